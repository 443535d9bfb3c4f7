"""The paired statistics against values worked out by hand on small examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalfleet.aggregator.bootstrap import (
    all_resample_counts,
    bootstrap_means,
    clustered_mean,
    resample_counts,
)
from evalfleet.aggregator.mcnemar import mcnemar_exact, mcnemar_from_em
from evalfleet.aggregator.paired import compare_models, mde_factor
from evalfleet.aggregator.scored import ScoredTurn
from evalfleet.aggregator.student_t import t_cdf, t_quantile, t_two_sided_p
from evalfleet.aggregator.verdict import verdict


def turn(label: str, story: str, number: int, em: float, f1: float, source: str = "wiki",
         answered: bool = True) -> ScoredTurn:  # fmt: skip
    return ScoredTurn(
        label=label, model=f"m/{label}", story_key=story, story_id=ord(story[-1]),
        source=source, turn=number, question=f"q{number}?", references=("gold",),
        answer="gold" if answered else None, error=None if answered else "HTTP 503",
        em=em if answered else None, f1=f1 if answered else None,
        prompt_tokens=10, completion_tokens=1, latency_ms=1.0,
    )  # fmt: skip


# Three stories of two turns. (base EM, base F1, tuned EM, tuned F1) per turn:
# story a: turn 1 base wrong -> tuned right; turn 2 both right
# story b: both wrong on both turns, tuned F1 slightly lower on turn 2
# story c: turn 1 base wrong -> tuned right; turn 2 base right -> tuned wrong
THREE_STORIES = {
    ("a", 1): (0.0, 0.0, 1.0, 1.0),
    ("a", 2): (1.0, 1.0, 1.0, 1.0),
    ("b", 1): (0.0, 0.5, 0.0, 0.5),
    ("b", 2): (0.0, 0.5, 0.0, 0.25),
    ("c", 1): (0.0, 0.0, 1.0, 1.0),
    ("c", 2): (1.0, 1.0, 0.0, 0.5),
}


def three_story_turns() -> list[ScoredTurn]:
    turns = [turn("base", s, n, v[0], v[1]) for (s, n), v in THREE_STORIES.items()]
    return turns + [turn("tuned", s, n, v[2], v[3]) for (s, n), v in THREE_STORIES.items()]


def test_student_t_matches_the_printed_tables() -> None:
    # Given the values of any t table
    # Then the quantiles and tails match them
    assert t_quantile(0.975, 19) == pytest.approx(2.093024, abs=1e-6)
    assert t_quantile(0.975, 2) == pytest.approx(4.302653, abs=1e-6)
    assert t_quantile(0.975, 1) == pytest.approx(12.706205, abs=1e-6)
    assert t_quantile(0.8, 19) == pytest.approx(0.860951, abs=1e-6)
    assert t_quantile(0.025, 5) == pytest.approx(-2.570582, abs=1e-6)
    # And with df = 2 the tail has the closed form P(T > t) = (1 - t / sqrt(2 + t^2)) / 2
    t = math.sqrt(3)
    assert t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(5), abs=1e-12)
    assert t_cdf(-t, 2) == pytest.approx((1 - t / math.sqrt(5)) / 2, abs=1e-12)


def test_exact_mcnemar_is_twice_the_smaller_binomial_tail() -> None:
    # Given 1 question fixed and 4 broken: P(X <= 1) for Bin(5, 1/2) = (1 + 5) / 32
    assert mcnemar_exact(1, 4).p_value == pytest.approx(2 * 6 / 32)
    # And 0 fixed, 6 broken: 2 / 64
    assert mcnemar_exact(0, 6).p_value == pytest.approx(2 / 64)
    # And a balanced split, or no discordant pair at all, gives 1
    assert mcnemar_exact(3, 3).p_value == 1.0
    assert mcnemar_exact(0, 0).p_value == 1.0


def test_mcnemar_binarizes_fractional_em_at_one_half() -> None:
    # Given EM averaged over several references (fractional)
    reference = [0.75, 0.25, 0.5, 0.0, 0.25]
    other = [0.25, 0.75, 0.5, 1.0, 0.0]
    # When tested
    result = mcnemar_from_em(reference, other)
    # Then right means EM >= 0.5: 0.25 -> 0.75 and 0.0 -> 1.0 are fixed, 0.75 -> 0.25 broke
    assert (result.fixed, result.broke) == (2, 1)
    assert result.p_value == pytest.approx(1.0)


def test_the_exact_bootstrap_of_equal_stories_gives_the_textbook_standard_error() -> None:
    # Given per-question differences in three stories of two turns: story means 0.5, 0, 1
    values = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    clusters = np.array([0, 0, 1, 1, 2, 2])
    # When the bootstrap enumerates all 27 equally likely resamples of the stories
    result = clustered_mean(values, clusters, all_resample_counts(3))
    # Then the corrected SE is the sample SD of the story means over sqrt(3): 0.5 / sqrt(3)
    se = 0.5 / math.sqrt(3)
    assert result.estimate == pytest.approx(0.5)
    assert result.se == pytest.approx(se)
    assert result.df == 2
    # And the interval is 0.5 -+ t(0.975, 2) x SE, the p-value the t tail at 0.5 / SE = sqrt 3
    assert result.ci_low == pytest.approx(0.5 - 4.302653 * se, abs=1e-6)
    assert result.ci_high == pytest.approx(0.5 + 4.302653 * se, abs=1e-6)
    assert result.p_value == pytest.approx(1 - math.sqrt(3) / math.sqrt(5))


def test_the_bootstrap_resamples_stories_and_weights_them_by_their_questions() -> None:
    # Given a story of one question (right) and a story of three (one right)
    values = np.array([1.0, 0.0, 0.0, 1.0])
    clusters = np.array([0, 1, 1, 1])
    totals, sizes = np.array([1.0, 1.0]), np.array([1.0, 3.0])
    # When all 4 ordered resamples of 2 stories are drawn: AA, AB, BA, BB
    means = bootstrap_means(totals, sizes, all_resample_counts(2))
    # Then each mean is over the questions drawn: 1, 2/4, 2/4, 1/3
    assert sorted(means) == pytest.approx([1 / 3, 0.5, 0.5, 1.0])
    # And the SD of those (0.25 by hand) times sqrt(2 / 1) is the SE
    result = clustered_mean(values, clusters, all_resample_counts(2))
    assert result.estimate == pytest.approx(0.5)
    assert result.se == pytest.approx(0.25 * math.sqrt(2))


def test_random_resamples_draw_each_story_as_often_as_there_are_stories() -> None:
    counts = resample_counts(np.random.default_rng(1), clusters=5, resamples=300)
    assert counts.shape == (300, 5)
    assert (counts.sum(axis=1) == 5).all()


def test_the_paired_comparison_of_three_stories_matches_the_hand_computation() -> None:
    # Given the three stories above
    turns = three_story_turns()
    # When tuned is compared with base (many resamples: close to the exact bootstrap)
    comparison = compare_models(turns, "base", "tuned", resamples=20000, seed=7)
    overall = comparison.overall
    assert overall is not None
    # Then EM goes 2/6 -> 3/6: +16.7 points; F1 3/6 -> 4.25/6: +20.8 points
    assert overall.em.reference == pytest.approx(100 * 2 / 6)
    assert overall.em.other == pytest.approx(100 * 3 / 6)
    assert overall.em.difference == pytest.approx(100 * 1 / 6)
    assert overall.f1.difference == pytest.approx(100 * 1.25 / 6)
    # And EM story differences are 0.5, 0, 0: SE = sd / sqrt(3) = (sqrt(1/12)) / sqrt(3)
    em_se = 100 * math.sqrt(1 / 12) / math.sqrt(3)
    assert overall.em.se is not None and overall.em.se == pytest.approx(em_se, rel=0.03)
    assert overall.em.mde == pytest.approx(mde_factor(2) * overall.em.se)
    # And McNemar counts 2 fixed (a1, c1) and 1 broke (c2): p = 2 x (1 + 3) / 8 = 1
    assert (overall.mcnemar.fixed, overall.mcnemar.broke) == (2, 1)
    assert overall.mcnemar.p_value == 1.0
    # And on F1 tuned wins a1, c1; ties a2, b1; loses b2, c2
    outcomes = overall.f1_outcomes
    assert (outcomes.wins, outcomes.ties, outcomes.losses) == (2, 2, 2)
    assert (overall.questions, overall.stories) == (6, 3)


def test_the_same_seed_gives_the_same_intervals() -> None:
    turns = three_story_turns()
    first = compare_models(turns, "base", "tuned", seed=3)
    again = compare_models(turns, "base", "tuned", seed=3)
    assert first == again


def test_questions_not_answered_by_both_are_left_out_and_counted() -> None:
    # Given base failed one question of story c
    turns = [t for t in three_story_turns() if not (t.label == "base" and t.story_key == "c")]
    turns.append(turn("base", "c", 1, 0.0, 0.0))
    turns.append(turn("base", "c", 2, 0.0, 0.0, answered=False))
    # When compared
    comparison = compare_models(turns, "base", "tuned")
    # Then the failed question is left out of every statistic and counted
    assert comparison.left_out == 1
    assert comparison.overall is not None and comparison.overall.questions == 5


def test_domains_are_compared_on_their_own_stories() -> None:
    # Given story a from one domain, b and c from another
    turns = [
        turn(t.label, t.story_key, t.turn, t.em or 0.0, t.f1 or 0.0,
             source="cnn" if t.story_key == "a" else "race")
        for t in three_story_turns()
    ]  # fmt: skip
    comparison = compare_models(turns, "base", "tuned")
    cnn, race = comparison.domains
    # Then a domain of one story has its difference but no interval
    assert (cnn.domain, cnn.stories) == ("cnn", 1)
    assert cnn.em.difference == pytest.approx(50.0)
    assert cnn.em.ci is None and cnn.em.p_value is None
    # And the other domain has its own interval, clipped to what a difference can be
    assert (race.domain, race.stories, race.questions) == ("race", 2, 4)
    assert race.f1.ci is not None and -100 <= race.f1.ci[0] <= race.f1.ci[1] <= 100


def test_the_smallest_detectable_difference_tends_to_the_textbook_factor() -> None:
    # (z_0.975 + z_0.8) = 1.95996 + 0.84162 with many stories; larger with few
    assert mde_factor(100000) == pytest.approx(2.8016, abs=1e-3)
    assert mde_factor(19) == pytest.approx(2.093024 + 0.860951, abs=1e-5)


def test_the_verdict_states_difference_interval_p_value_and_detectable_difference() -> None:
    # Given a clear improvement in ten stories
    turns = []
    for s in range(10):
        for n in (1, 2):
            turns.append(turn("base", f"s{s}", n, 0.0, 0.2 + 0.01 * s))
            turns.append(turn("tuned", f"s{s}", n, 1.0, 0.9 - 0.01 * n))
    comparison = compare_models(turns, "base", "tuned")
    # When the verdict is written
    text = verdict(comparison)
    # Then it says who wins, by how much, how sure, and what could have been detected
    assert text.kind == "better"
    assert text.headline == "tuned beats base"
    assert "F1 +" in text.detail and "95% CI" in text.detail and "p < 0.001" in text.detail
    assert "McNemar on EM (right = EM >= 0.5)" in text.detail
    assert "smallest detectable difference" in text.detail
    assert "20 questions in 10 stories" in text.detail


def test_no_difference_is_not_called_a_win() -> None:
    turns = [turn(label, f"s{s}", 1, 0.5, 0.5) for label in ("base", "tuned") for s in range(4)]
    text = verdict(compare_models(turns, "base", "tuned"))
    assert text.kind == "unclear"
    assert text.headline == "no detectable difference between tuned and base"


@pytest.mark.parametrize(("fixed", "broke"), [(0, 1), (2, 9), (7, 5), (30, 45), (400, 520)])
def test_exact_mcnemar_equals_the_binomial_sum_written_with_math_comb(
    fixed: int, broke: int
) -> None:
    n = fixed + broke
    tail = sum(math.comb(n, k) for k in range(min(fixed, broke) + 1))
    assert mcnemar_exact(fixed, broke).p_value == pytest.approx(min(1.0, 2 * tail / 2**n))
