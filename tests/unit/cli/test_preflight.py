"""`evalfleet run` checks its endpoint first: a refused port, a wrong key, an unknown host, a
TLS mismatch, a silent server or an unknown model is one line naming the URL and the cause,
exit code 1, and no run in the database. Against the real simulator over HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, func, select

from evalfleet import preflight
from evalfleet.cli.main import cli
from evalfleet.fleet import free_port
from evalfleet.schema.models import Run
from evalfleet.schema.settings import Settings
from evalfleet.simulator.config import DEMO_MODELS, SIM_BASE, SIM_FINETUNED, SIM_JUDGE, SimConfig
from evalfleet.simulator.server import SimServer

KEY = "the-right-key-7f3a9c"
WRONG_KEY = "a-wrong-key-0b1e2d"


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(required_api_key=KEY)) as server:
        yield server


def run(base_url: str, key: str | None = None, base: str = SIM_BASE,
        finetuned: str = SIM_FINETUNED) -> Result:  # fmt: skip
    env = {"TOGETHER_BASE_URL": base_url, **({"TOGETHER_API_KEY": key} if key else {})}
    args = ["run", "--dataset", "data.jsonl", "--base", base, "--finetuned", finetuned]
    return CliRunner().invoke(cli, args, env=env)


def runs_in(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = int(connection.scalar(select(func.count()).select_from(Run)) or 0)
    engine.dispose()
    return count


def assert_refused(result: Result, line: str, database: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.output == f"Error: {line}\n"
    assert runs_in(database) == 0
    assert KEY not in result.output and WRONG_KEY not in result.output


def test_a_refused_port_is_one_line_naming_the_url(database: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = f"cannot reach the API at {url}: connection refused; check TOGETHER_BASE_URL"
    assert_refused(run(url), line, database)


def test_a_wrong_key_is_one_line_and_the_key_is_not_shown(database: str, sim: SimServer) -> None:
    line = f"the API refused the key at {sim.base_url} (401 Unauthorized); check TOGETHER_API_KEY"
    assert_refused(run(sim.base_url, WRONG_KEY), line, database)
    assert sim.stats()["requests_total"] == 0  # not one chat request was paid for


def test_an_unknown_model_lists_the_close_names(database: str, sim: SimServer) -> None:
    result = run(sim.base_url, KEY, base="evalfleet/sim-bsae")
    line = (
        f"the API at {sim.base_url} does not know the model 'evalfleet/sim-bsae' (base); "
        f"close names it lists: {SIM_BASE}, {SIM_JUDGE}, {SIM_FINETUNED}"
    )
    assert_refused(result, line, database)


def test_an_unknown_model_without_close_names_says_how_many_are_listed(
    database: str, sim: SimServer
) -> None:
    result = run(sim.base_url, KEY, finetuned="me/Meta-Llama-3.1-8B-ft")
    line = (
        f"the API at {sim.base_url} does not know the model 'me/Meta-Llama-3.1-8B-ft' "
        "(finetuned); it lists 3 models, none close to it (GET /v1/models)"
    )
    assert_refused(result, line, database)
    assert sim.stats()["requests_total"] == 1  # the one 1-token request that said 404


def test_an_unresolvable_host_is_a_dns_failure(database: str) -> None:
    url = "http://nonexistent.invalid"
    line = (
        f"cannot reach the API at {url}: DNS lookup failed for nonexistent.invalid; "
        "check TOGETHER_BASE_URL"
    )
    assert_refused(run(url, KEY), line, database)


def test_https_to_a_plain_http_server_is_a_tls_error(database: str, sim: SimServer) -> None:
    url = sim.base_url.replace("http://", "https://")
    line = (
        f"cannot reach the API at {url}: TLS handshake failed (WRONG_VERSION_NUMBER: "
        "a plain http:// server?); check TOGETHER_BASE_URL"
    )
    assert_refused(run(url, KEY), line, database)


def test_a_server_that_never_answers_is_a_timeout(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preflight, "TIMEOUT_S", 0.3)
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = run(url)
    assert_refused(result, f"the API at {url} did not answer within 0.3s (timeout)", database)


def test_the_simulator_with_the_demo_models_passes() -> None:
    with SimServer(SimConfig()) as server:
        checked = preflight.check_endpoint(Settings(), server.base_url, DEMO_MODELS)
        requests = server.stats()["requests_total"]
    assert (checked.url, checked.listed, checked.notes) == (server.base_url, 3, ())
    assert requests == 0  # listed models need no chat request


def test_the_right_key_passes(sim: SimServer) -> None:
    settings = Settings(TOGETHER_API_KEY=KEY)
    checked = preflight.check_endpoint(settings, sim.base_url, {"a": SIM_BASE, "b": SIM_BASE})
    assert checked.listed == 3 and checked.notes == ()
