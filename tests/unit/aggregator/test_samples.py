"""Repeated samples: a question's samples count as one question scored by their mean, the
paired statistics resample stories with all their samples, and the share of variance that
is sampling noise is worked out by hand on small sets."""

from __future__ import annotations

import pytest

from evalfleet.aggregator.aggregate import OVERALL, compute_scores
from evalfleet.aggregator.analysis import compute_analysis
from evalfleet.aggregator.samples import noise_lines, per_question_means, sampling_noise
from evalfleet.aggregator.scored import ScoredTurn


def sample(label: str, story: str, number: int, k: int, f1: float | None,
           em: float | None = None) -> ScoredTurn:  # fmt: skip
    """Sample k of a question; f1 None: that sample failed."""
    answered = f1 is not None
    return ScoredTurn(
        label=label, model=f"m/{label}", story_key=story, story_id=ord(story), source="wiki",
        turn=number, question=f"q{number}?", references=("gold",),
        answer=f"answer {k}" if answered else None, error=None if answered else "HTTP 400",
        em=(f1 if em is None else em) if answered else None, f1=f1, prompt_tokens=10,
        completion_tokens=2, latency_ms=1.0, sample=k,
    )  # fmt: skip


def test_a_questions_samples_become_one_turn_scored_by_the_mean_of_its_answered_samples() -> None:
    # Given a question with two answered samples and a failed one, and one whose samples all failed
    turns = [sample("base", "a", 1, 0, 1.0), sample("base", "a", 1, 1, None),
             sample("base", "a", 1, 2, 0.5, em=0.0),
             *(sample("base", "a", 2, k, None) for k in range(3))]  # fmt: skip
    # When they are collapsed
    questions = per_question_means(turns)
    # Then each question is one turn: the first scored by the means over its answered samples
    # (the failed sample left out, not scored 0), with the first answered sample's text
    assert len(questions) == 2
    first, second = questions
    assert (first.turn, first.f1, first.em, first.answer) == (1, 0.75, 0.5, "answer 0")
    # And a question none of whose samples answered is failed, with its error
    assert (second.turn, second.answer, second.error, second.f1) == (2, None, "HTTP 400", None)
    # And collapsing again changes nothing
    assert per_question_means(questions) == questions


def test_a_run_asked_once_is_left_as_it_is() -> None:
    # Given turns of a run asked once (every sample 0)
    turns = [sample("base", "a", n, 0, f1) for n, f1 in ((1, 1.0), (2, 0.0))]
    # Then the collapse returns them unchanged, and there is no sampling noise to report
    assert per_question_means(turns) == turns
    assert sampling_noise(turns) == ()
    assert noise_lines(sampling_noise(turns)) == []


def test_the_variance_share_is_the_within_question_sum_of_squares_over_the_total() -> None:
    # Given base: question 1 answered [1, 0], question 2 [1, 1] (answers 1, 0, 1, 1: mean 0.75,
    # total sum of squares 0.75, within question 1: 0.5 -> share 2/3); tuned: its samples always
    # agree, [1, 1] and [0, 0] (share 0); flat: every answer 0.5 (no variance at all)
    values = {"base": ((1.0, 0.0), (1.0, 1.0)), "tuned": ((1.0, 1.0), (0.0, 0.0)),
              "flat": ((0.5, 0.5), (0.5, 0.5))}  # fmt: skip
    turns = [
        sample(label, "a", number, k, f1)
        for label, questions in values.items()
        for number, samples in enumerate(questions, start=1)
        for k, f1 in enumerate(samples)
    ]
    # When the sampling noise is measured
    noise = {n.label: n for n in sampling_noise(turns)}
    # Then each model's share is the hand-computed one, on F1 and on EM
    assert noise["base"].f1_share == pytest.approx(2 / 3)
    assert noise["base"].em_share == pytest.approx(2 / 3)
    assert (noise["tuned"].f1_share, noise["flat"].f1_share) == (0.0, None)
    assert (noise["base"].samples, noise["base"].questions) == (2, 2)
    # And the report says so, in percent
    assert "base: F1 67%, EM 67% (over 2 questions)" in noise_lines(tuple(noise.values()))


def test_a_question_with_one_answered_sample_adds_no_within_variance() -> None:
    # Given base's question 1 with samples [1, 0] and question 2 with one sample answered only
    turns = [sample("base", "a", 1, 0, 1.0), sample("base", "a", 1, 1, 0.0),
             sample("base", "a", 2, 0, 1.0), sample("base", "a", 2, 1, None)]  # fmt: skip
    # Then only question 1 counts: all of its variance is between its samples
    (noise,) = sampling_noise(turns)
    assert (noise.questions, noise.f1_share) == (1, pytest.approx(1.0))


def test_scores_and_paired_statistics_are_those_of_the_per_question_means() -> None:
    # Given two models over three stories of two questions, three samples each
    turns = [
        sample(label, story, number, k, ((k + number + len(label) + ord(story)) % 3) / 2)
        for label in ("base", "tuned")
        for story in "abc"
        for number in (1, 2)
        for k in range(3)
    ]
    means = per_question_means(turns)
    # When the scores and the analysis are computed from every sample
    scores = compute_scores(turns)
    analysis = compute_analysis(turns, {})
    # Then they are those of the means: one question per (model, question), its samples'
    # mean as its score, and the bootstrap over the stories of those means
    assert scores == compute_scores(means)
    base = next(s for s in scores if s.label == "base" and s.domain == OVERALL)
    assert (base.questions, base.answered, base.scored) == (6, 6, 6)
    assert base.f1 == pytest.approx(100 * sum(t.f1 or 0 for t in means[:6]) / 6)
    assert analysis.comparisons == compute_analysis(means, {}).comparisons
    # And only the analysis of the samples holds their noise
    assert [n.label for n in analysis.sampling_noise] == ["base", "tuned"]
    assert compute_analysis(means, {}).sampling_noise == ()
