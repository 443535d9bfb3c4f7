"""The API key stays in the environment of the processes that call the API: not in the
database, Redis, logs, reports, exports or error texts. Text holding SQL or markup is stored
and shown verbatim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from fleet import evalfleet, fleet_env, logs, run_args
from sqlalchemy import MetaData, create_engine, select

from evalfleet.fleet import WorkerFleet
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.server import SimServer

pytestmark = pytest.mark.integration

KEY = "tgp_v1_RECOGNISABLE_secret_key_4f9a27c1"
WRONG_KEY = "tgp_v1_WRONG_recognisable_key_77b3e0d2"
SQL_STORY = "Robert'); DROP TABLE runs; -- went home. He took <b>the</b> train at 5."
MARKUP_QUESTION = "<script>alert('x')</script> Where did Robert go?"


def tricky_dataset(folder: Path) -> Path:
    path = folder / "tricky.jsonl"
    record = {
        "source": "wikipedia",
        "story": SQL_STORY,
        "questions": [MARKUP_QUESTION, "How did he travel?"],
        "answers": {"input_text": ["home", "by train"]},
    }
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def database_text(url: str) -> str:
    """Every row of every table, as text: what a database dump would hold."""
    engine = create_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        rows = [
            repr(tuple(row)) for table in metadata.sorted_tables
            for row in connection.execute(select(table))
        ]  # fmt: skip
    engine.dispose()
    return "\n".join(rows)


def redis_text(url: str) -> str:
    client = redis.Redis.from_url(url)
    parts: list[Any] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            parts.append(client.get(key))
        elif kind == b"list":
            parts.extend(client.lrange(key, 0, -1))
        elif kind == b"hash":
            parts.extend(client.hgetall(key).items())
        elif kind == b"set":
            parts.extend(client.smembers(key))
        elif kind == b"zset":
            parts.extend(client.zrange(key, 0, -1))
        parts.append(key)
    return repr(parts)


def test_the_api_key_is_nowhere_but_in_the_workers_environment(
    postgres_url: str, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    # Given an API that requires a recognisable key, and a data set holding SQL and markup
    dataset = tricky_dataset(tmp_path)
    with SimServer(SimConfig(required_api_key=KEY)) as sim:
        env = fleet_env(postgres_url, redis_url, queue_name, sim.base_url, TOGETHER_API_KEY=KEY)
        assert evalfleet(["db", "upgrade"], env, tmp_path).returncode == 0
        # When one run succeeds, and one is refused for a wrong key
        with WorkerFleet(1, 4, env, tmp_path / "logs"):
            good = evalfleet(run_args(dataset, "--wait", "--json"), env, tmp_path)
        bad_env = {**env, "TOGETHER_API_KEY": WRONG_KEY}
        with WorkerFleet(1, 2, bad_env, tmp_path / "logs-wrong"):
            # past the preflight, which would refuse the key before the run exists
            bad_args = run_args(dataset, "--wait", "--no-cache", "--no-preflight")
            bad = evalfleet(bad_args, bad_env, tmp_path)
    assert good.returncode == 0, good.stderr + logs(tmp_path)
    assert bad.returncode != 0 and "the API refused the key" in bad.stderr + bad.stdout
    run_id = str(json.loads(good.stdout)["run_id"])
    outputs = [good.stdout, good.stderr, bad.stdout, bad.stderr]
    reads = [
        ["report", run_id, "--format", "json"],
        ["report", run_id, "--format", "markdown"],
        ["status", run_id],
        ["export", run_id],
        ["status", str(int(run_id) + 1)],  # the refused run
    ]
    for args in reads:
        result = evalfleet(args, env, tmp_path)
        assert result.returncode == 0, result.stderr
        outputs += [result.stdout, result.stderr]
        if args[0] == "export":
            exported = [json.loads(line) for line in result.stdout.splitlines()]
    html = tmp_path / "report.html"
    assert (
        evalfleet(
            ["report", run_id, "--format", "html", "--out", str(html)], env, tmp_path
        ).returncode
        == 0
    )  # noqa: E501
    outputs.append(html.read_text(encoding="utf-8"))
    # Then neither key appears in the database, Redis, the logs or any output
    everywhere = {
        "database": database_text(postgres_url),
        "redis": redis_text(redis_url),
        "logs": logs(tmp_path),
        "outputs": "\n".join(outputs),
    }
    for place, text in everywhere.items():
        assert KEY not in text, f"the API key leaked into the {place}"
        assert WRONG_KEY not in text, f"the wrong API key leaked into the {place}"
    # And the SQL and markup were stored and exported verbatim
    assert MARKUP_QUESTION in {record["question"] for record in exported}
    assert SQL_STORY in everywhere["database"]
    assert "<script>alert" not in outputs[-1]  # escaped in the HTML page
