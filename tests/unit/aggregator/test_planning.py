"""The sample-size plan: its formula against a hand computation and against a simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from unit.aggregator.test_paired_statistics import three_story_turns

from evalfleet.aggregator.bootstrap import clustered_mean, resample_counts
from evalfleet.aggregator.paired import pair_turns
from evalfleet.aggregator.planning import (
    paired_spreads,
    plan_metric,
    smallest_detectable,
    stories_needed,
    story_spread,
)


def test_the_sample_size_matches_the_hand_computation() -> None:
    # Given a story-level SD of 10 points and a wanted effect of 2 points (80%, alpha 0.05)
    # The normal formula gives ((1.959964 + 0.841621) x 10 / 2)^2 = 196.2: at least 197.
    # With t quantiles (t tables): S = 198, df 197: (1.972079 + 0.843450) x 10 / sqrt(198)
    # = 2.8155 x 0.71067 = 2.0009 > 2; S = 199, df 198: (1.972017 + 0.843440) x 10 /
    # sqrt(199) = 2.8155 x 0.70888 = 1.9958 <= 2. So 199 stories.
    assert stories_needed(10.0, 2.0, 0.05, 0.8) == 199
    assert smallest_detectable(10.0, 198, 0.05, 0.8) == pytest.approx(2.0009, abs=1e-4)
    assert smallest_detectable(10.0, 199, 0.05, 0.8) == pytest.approx(1.9958, abs=1e-4)
    # And with many stories the t rule meets the normal one
    normal = math.ceil((2.801585 * 100 / 1) ** 2)  # 78,489
    assert normal <= stories_needed(100.0, 1.0, 0.05, 0.8) <= normal + 3
    # And more power or a smaller alpha needs more stories; no spread needs the minimum
    assert stories_needed(10.0, 2.0, 0.05, 0.9) > 199 < stories_needed(10.0, 2.0, 0.01, 0.8)
    assert stories_needed(0.0, 2.0, 0.05, 0.8) == 2


def test_the_story_spread_matches_the_hand_computation() -> None:
    # Given the three stories of two turns (test_paired_statistics): F1 differences
    # a: 1, 0 (total 1); b: 0, -0.25 (total -0.25); c: 1, -0.5 (total 0.5); mean D = 1.25 / 6
    questions, _ = pair_turns(three_story_turns(), "base", "tuned")
    f1, em = paired_spreads(questions)
    # Then the residuals (T_s - 2 D) / 2 are 0.291667, -0.333333, 0.041667
    d = 1.25 / 6
    residuals = [(1 - 2 * d) / 2, (-0.25 - 2 * d) / 2, (0.5 - 2 * d) / 2]
    sd = 100 * math.sqrt(sum(r * r for r in residuals) / 2)
    assert f1.sd == pytest.approx(sd) and f1.sd == pytest.approx(31.458, abs=1e-3)
    assert (f1.stories, f1.questions, f1.difference) == (3, 6, pytest.approx(100 * d))
    # And on EM the story totals are 1, 0, 0: residuals 1/3, -1/6, -1/6 -> sd = sqrt(1/12)
    assert em.sd == pytest.approx(100 * math.sqrt(1 / 12))
    assert em.se == pytest.approx(100 * math.sqrt(1 / 12) / math.sqrt(3))
    with pytest.raises(ValueError, match="two stories"):
        story_spread("f1", np.array([0.5, 0.1]), np.array([0, 0], dtype=np.int64))


def test_the_planned_size_has_the_wanted_power_in_a_simulation() -> None:
    # Given a pilot of 40 stories of 5-20 questions, most differences 0, some large
    rng = np.random.default_rng(2024)
    pilot = []
    for _ in range(40):
        n = int(rng.integers(5, 21))
        changed = rng.random(n) < 0.3
        pilot.append(np.clip(np.where(changed, rng.normal(0.05, 0.4, n), 0.0), -1.0, 1.0))
    clusters = np.repeat(np.arange(40), [len(s) for s in pilot]).astype(np.int64)
    spread = story_spread("f1", np.concatenate(pilot), clusters)
    # When planned for a 2-point effect with 80% power at alpha 0.05
    plan = plan_metric(spread, 2.0, 0.05, 0.8)
    stories = plan.stories
    assert 40 < stories < 400
    # And stories are drawn from the pilot, shifted so that the true difference is 2 points,
    # then tested as the report tests them (story bootstrap SE, t with stories - 1 df)
    shift = (2.0 - spread.difference) / 100
    trials, detected = 1000, 0
    for _ in range(trials):
        picks = rng.integers(0, 40, stories)
        values = np.concatenate([pilot[p] + shift for p in picks])
        owners = np.repeat(np.arange(stories), [len(pilot[p]) for p in picks]).astype(np.int64)
        mean = clustered_mean(values, owners, resample_counts(rng, stories, 400))
        assert mean.p_value is not None
        detected += mean.p_value < 0.05 and mean.estimate > 0
    # Then about 80% of the trials find it (1000 trials: Monte Carlo SE 1.3 points)
    assert detected / trials == pytest.approx(0.8, abs=0.045)
