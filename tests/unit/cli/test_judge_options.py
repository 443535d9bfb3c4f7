"""`evalfleet run --judge MODEL [--judge-base-url URL]`: what is refused before anything is
written, each with one line naming the problem (the judge's preflight against the real
simulator over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from unit.cli.test_preflight import assert_refused

from evalfleet.cli.main import cli
from evalfleet.fleet import free_port
from evalfleet.simulator.config import SIM_BASE, SIM_FINETUNED, SIM_JUDGE, SimConfig
from evalfleet.simulator.server import SimServer


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig()) as server:
        yield server


def run(base_url: str, *extra: str) -> Result:
    args = ["run", "--dataset", "data.jsonl", "--base", SIM_BASE, "--finetuned", SIM_FINETUNED]
    return CliRunner().invoke(cli, [*args, *extra], env={"TOGETHER_BASE_URL": base_url})


def test_a_model_labelled_judge_is_refused(database: str, sim: SimServer) -> None:
    result = run(sim.base_url, "--model", f"judge={SIM_BASE}")
    line = (
        "--model judge=...: the label 'judge' is the judge's (its price's key); give the "
        "model another label, or grade with --judge MODEL"
    )
    assert_refused(result, line, database)


def test_a_judge_in_batch_mode_is_refused_as_not_supported_yet(
    database: str, sim: SimServer
) -> None:
    result = run(sim.base_url, "--judge", SIM_JUDGE, "--mode", "batch")
    line = (
        "--judge is not supported with --mode batch yet (the judge grades each answer "
        "synchronously after it is stored); use --mode sync"
    )
    assert_refused(result, line, database)
    assert sim.stats()["requests_total"] == 0


def test_a_judge_base_url_without_a_judge_is_refused(database: str, sim: SimServer) -> None:
    result = run(sim.base_url, "--judge-base-url", sim.base_url)
    assert_refused(result, "--judge-base-url needs --judge MODEL", database)


def test_a_judge_the_endpoint_does_not_know_is_refused_by_the_preflight_naming_it(
    database: str, sim: SimServer
) -> None:
    result = run(sim.base_url, "--judge", "evalfleet/sim-judg")
    line = (
        f"the API at {sim.base_url} does not know the model 'evalfleet/sim-judg' (judge); "
        f"close names it lists: {SIM_JUDGE}, {SIM_FINETUNED}, {SIM_BASE}"
    )
    assert_refused(result, line, database)


def test_a_judge_on_its_own_unreachable_url_is_refused_naming_that_url(
    database: str, sim: SimServer
) -> None:
    judge_url = f"http://127.0.0.1:{free_port()}"
    result = run(sim.base_url, "--judge", SIM_JUDGE, "--judge-base-url", judge_url)
    line = f"cannot reach the API at {judge_url}: connection refused; check TOGETHER_BASE_URL"
    assert_refused(result, line, database)


def test_a_judge_base_url_ending_in_v1_is_refused_with_the_fix(
    database: str, sim: SimServer
) -> None:
    result = run(sim.base_url, "--judge", SIM_JUDGE, "--judge-base-url", f"{sim.base_url}/v1")
    assert result.exit_code == 1 and "host only" in result.output


def test_a_budget_needs_the_judges_price_too(database: str, sim: SimServer) -> None:
    result = run(sim.base_url, "--judge", "some/unpriced-judge", "--budget", "1")
    line = (
        "--budget needs a price for every model; none for some/unpriced-judge: "
        "add --price MODEL=IN,OUT"
    )
    assert_refused(result, line, database)
