"""The judge metric's scores and paired statistics, on hand-built ScoredTurns: the accuracy's
pairing rule, the paired difference, McNemar on the judge, and Holm / too few stories."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from evalfleet.aggregator.aggregate import OVERALL, compute_scores
from evalfleet.aggregator.holm import holm_adjust
from evalfleet.aggregator.paired import compare_models
from evalfleet.aggregator.scored import ScoredTurn


def turn(
    label: str, story: int, turn_no: int, judge: float | None, *, source: str = "cnn",
    em: float = 0.0, answered: bool = True,
) -> ScoredTurn:  # fmt: skip
    return ScoredTurn(
        label=label, model=f"m/{label}", story_key=f"s{story}", story_id=story, source=source,
        turn=turn_no, question="q?", references=("gold",), answer="a" if answered else None,
        error=None if answered else "HTTP 503", em=em if answered else None,
        f1=em if answered else None, prompt_tokens=1, completion_tokens=1, latency_ms=1.0,
        judge=judge if answered else None, verdict=None if judge is None else "x",
    )  # fmt: skip


def _overall(turns: Sequence[ScoredTurn], label: str) -> float | None:
    return next(s.judge for s in compute_scores(turns) if s.label == label and s.domain == OVERALL)


def test_the_judge_accuracy_counts_only_questions_graded_for_every_model() -> None:
    # Given four questions answered by both models; q3 not graded for b (the judge failed),
    # q4 not answered by b at all
    turns = [
        turn("a", 1, 1, 1.0), turn("a", 1, 2, 0.0), turn("a", 1, 3, 1.0), turn("a", 1, 4, 1.0),
        turn("b", 1, 1, 1.0), turn("b", 1, 2, 1.0), turn("b", 1, 3, None),
        turn("b", 1, 4, None, answered=False),
    ]  # fmt: skip
    # When scored
    # Then both accuracies are on q1 and q2 only: a 1 of 2, b 2 of 2
    assert _overall(turns, "a") == 50.0
    assert _overall(turns, "b") == 100.0


def test_a_run_without_a_judge_has_no_judge_accuracy_and_em_f1_are_unchanged() -> None:
    turns = [turn("a", 1, 1, None, em=1.0), turn("b", 1, 1, None, em=0.0)]
    scores = {(s.label, s.domain): s for s in compute_scores(turns)}
    assert scores[("a", OVERALL)].judge is None and scores[("b", OVERALL)].judge is None
    assert scores[("a", OVERALL)].em == 100.0 and scores[("b", OVERALL)].em == 0.0


def test_a_model_the_judge_graded_nothing_of_does_not_empty_the_others_accuracy() -> None:
    # Given three models; the judge failed on every answer of c
    turns = [
        turn("a", 1, 1, 1.0), turn("a", 1, 2, 0.0), turn("b", 1, 1, 0.0), turn("b", 1, 2, 0.0),
        turn("c", 1, 1, None), turn("c", 1, 2, None),
    ]  # fmt: skip
    assert _overall(turns, "a") == 50.0 and _overall(turns, "b") == 0.0
    assert _overall(turns, "c") is None


def _stories(label: str, judges: Sequence[Sequence[float | None]], source: str,
             first: int) -> list[ScoredTurn]:  # fmt: skip
    return [
        turn(label, first + s, t, j, source=source)
        for s, story in enumerate(judges)
        for t, j in enumerate(story, start=1)
    ]


def test_the_paired_judge_comparison_has_its_difference_interval_and_mcnemar() -> None:
    # Given 8 stories of 2 questions; b is judged correct on 5 questions a got wrong, and
    # wrong on 1 a got right
    a = [[0.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0],
         [0.0, 1.0]]  # fmt: skip
    b = [[1.0, 1.0], [1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0],
         [0.0, 1.0]]  # fmt: skip
    turns = _stories("a", a, "cnn", 0) + _stories("b", b, "cnn", 0)
    # When compared
    group = compare_models(turns, "a", "b").overall
    assert group is not None and group.judge is not None
    judge = group.judge
    # Then the accuracies are the shares judged correct and the difference theirs
    assert judge.questions == 16 and judge.stories == 8
    assert judge.accuracy.reference == pytest.approx(100 * 7 / 16)
    assert judge.accuracy.other == pytest.approx(100 * 11 / 16)
    assert judge.accuracy.difference == pytest.approx(100 * 4 / 16)
    assert judge.accuracy.ci is not None and judge.accuracy.ci[0] < 25.0 < judge.accuracy.ci[1]
    # And McNemar counts the discordant questions: 5 fixed, 1 broke, exact p = 2 x 7/64
    assert (judge.mcnemar.fixed, judge.mcnemar.broke) == (5, 1)
    assert judge.mcnemar.p_value == pytest.approx(2 * 7 / 64)


def test_the_judge_comparison_pairs_only_questions_graded_for_both() -> None:
    # Given story 3's only question not graded for b: its judge comparison has 2 stories
    a = [[1.0], [0.0], [1.0]]
    b = [[1.0], [1.0], [None]]
    turns = _stories("a", a, "cnn", 0) + _stories("b", b, "cnn", 0)
    group = compare_models(turns, "a", "b").overall
    assert group is not None and group.judge is not None
    assert (group.questions, group.stories) == (3, 3)  # EM/F1 keep every answered question
    assert (group.judge.questions, group.judge.stories) == (2, 2)
    assert group.judge.accuracy.difference == pytest.approx(50.0)
    assert group.judge.accuracy.ci is not None  # its own resamples: no 0 / 0


def test_a_comparison_without_a_judge_has_no_judge_part() -> None:
    turns = _stories("a", [[None], [None]], "cnn", 0) + _stories("b", [[None], [None]], "cnn", 0)
    comparison = compare_models(turns, "a", "b")
    assert comparison.overall is not None and comparison.overall.judge is None
    assert all(g.judge is None for g in comparison.domains)
    assert comparison.judge_holm_domains == 0


def test_judge_p_values_per_domain_are_holm_adjusted_and_small_domains_claim_nothing() -> None:
    # Given two domains of 6 stories each (b better in cnn) and one of 2 stories
    better = [[0.0, 0.0]] * 5 + [[1.0, 0.0]]
    a = _stories("a", better, "cnn", 0) + _stories("a", [[1.0, 0.0]] * 6, "news", 10)
    b = _stories("b", [[1.0, 1.0]] * 5 + [[1.0, 1.0]], "cnn", 0)
    b += _stories("b", [[1.0, 0.0]] * 5 + [[0.0, 0.0]], "news", 10)
    a += _stories("a", [[0.0], [0.0]], "wiki", 20)
    b += _stories("b", [[1.0], [1.0]], "wiki", 20)
    # When compared per domain
    comparison = compare_models(a + b, "a", "b")
    domains = {g.domain: g for g in comparison.domains}
    judges = {d: g.judge for d, g in domains.items()}
    assert all(j is not None for j in judges.values())
    cnn, news, wiki = judges["cnn"], judges["news"], judges["wiki"]
    assert cnn is not None and news is not None and wiki is not None
    # Then the judge family is the two domains with 5 graded stories or more, Holm over them
    assert comparison.judge_holm_domains == 2
    raw = [cnn.accuracy.p_value, news.accuracy.p_value]
    assert raw[0] is not None and raw[1] is not None
    assert [cnn.accuracy.p_holm, news.accuracy.p_holm] == pytest.approx(holm_adjust(raw))
    assert [cnn.mcnemar_p_holm, news.mcnemar_p_holm] == pytest.approx(
        holm_adjust([cnn.mcnemar.p_value, news.mcnemar.p_value])
    )
    assert cnn.accuracy.significant and cnn.accuracy.p_shown == cnn.accuracy.p_holm
    # And the 2-story domain has its estimate and interval but no p-value, no claim
    assert wiki.too_few_stories and not wiki.accuracy.significant
    assert wiki.accuracy.difference == 100.0
    assert wiki.accuracy.p_shown is None and wiki.mcnemar_p_shown is None


def test_a_domain_with_enough_stories_but_too_few_graded_makes_no_judge_claim() -> None:
    # Given 6 stories in one domain, only 3 of them graded for b
    a = _stories("a", [[0.0]] * 6, "cnn", 0)
    b = _stories("b", [[1.0]] * 3 + [[None]] * 3, "cnn", 0)
    comparison = compare_models(a + b, "a", "b")
    (domain,) = comparison.domains
    assert not domain.too_few_stories  # EM and F1 claim, with 6 stories
    assert domain.judge is not None and domain.judge.too_few_stories
    assert domain.judge.stories == 3 and comparison.judge_holm_domains == 0
