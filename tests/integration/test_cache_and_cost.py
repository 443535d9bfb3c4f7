"""The response cache: a second identical run makes no API call; another model never gets a
cached answer of a different one. Tokens and cost are shown, and a budget stops the work."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fleet import SimulatedFleet, evalfleet, run_args

from evalfleet.simulator.config import SIM_BASE, SIM_FINETUNED

pytestmark = pytest.mark.integration
STORIES = "3"


def test_a_repeated_run_is_served_from_the_cache_and_models_never_share_entries(
    shared_file: Callable[[str], Path], sim_fleet: SimulatedFleet, tmp_path: Path
) -> None:
    dataset = shared_file("coqa/coqa-validation-first20.jsonl")
    with sim_fleet(concurrency=8) as (sim, env, _):
        # Given a first run of two models
        first = evalfleet(run_args(dataset, "--limit", STORIES, "--wait", "--json"), env, tmp_path)
        after_first = sim.stats()["requests_total"]
        # When the same configuration runs again
        second = evalfleet(run_args(dataset, "--limit", STORIES, "--wait", "--json"), env, tmp_path)
        after_second = sim.stats()["requests_total"]
        # And a run asks the base model's questions of the other model under the same label
        swapped = {"base": SIM_FINETUNED, "finetuned": SIM_BASE}
        third = evalfleet(
            run_args(dataset, "--limit", STORIES, "--wait", "--json", models=swapped),
            env, tmp_path,
        )  # fmt: skip
        after_third = sim.stats()["requests_total"]
    one, two, three = (json.loads(r.stdout) for r in (first, second, third))
    questions = one["models"]["base"]["questions"]
    # Then the second run cost no API call and scored exactly the same
    assert after_first == 2 * questions
    assert after_second == after_first
    assert two["models"] == {
        **two["models"],
        **{
            k: {**v, "api_calls": 0, "cost_usd": 0.0, "prompt_tokens": 0, "completion_tokens": 0}
            for k, v in two["models"].items()
        },
    }  # noqa: E501
    for label in ("base", "finetuned"):
        assert (two["models"][label]["em"], two["models"][label]["f1"]) == (
            one["models"][label]["em"], one["models"][label]["f1"],
        )  # fmt: skip
    # And with the models swapped, every answer comes from the cache of the right model:
    # the same answers as before, by model, not by label
    assert after_third == after_second
    assert three["models"]["base"]["f1"] == one["models"]["finetuned"]["f1"]
    assert three["models"]["finetuned"]["f1"] == one["models"]["base"]["f1"]
    # And the first run shows its tokens and cost (the simulated models are priced like an 8B)
    assert one["models"]["base"]["prompt_tokens"] > 0
    assert one["progress"]["cost_usd"] > 0 and one["progress"]["api_calls"] == 2 * questions


def test_a_budget_stops_starting_work_once_spent(
    shared_file: Callable[[str], Path], sim_fleet: SimulatedFleet, tmp_path: Path
) -> None:
    dataset = shared_file("coqa/coqa-validation-first20.jsonl")
    with sim_fleet(concurrency=1) as (sim, env, _):
        # Given a budget far below what 20 stories cost, at $1,000 per million tokens
        args = ["--price", f"{SIM_BASE}=1000,1000", "--price",
                f"{SIM_FINETUNED}=1000,1000", "--budget", "1", "--no-cache"]  # fmt: skip
        result = evalfleet(run_args(dataset, "--wait", "--json", *args), env, tmp_path)
    requests = sim.stats()["requests_total"]  # read once the workers stopped
    summary = json.loads(result.stdout)
    # Then work stops soon after the budget is spent, and what was not started is reported
    assert summary["progress"]["cost_usd"] >= 1
    assert requests < 594 / 2
    assert any("budget of $1 spent" in f["error"] for f in summary["failures"])
