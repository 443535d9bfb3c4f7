"""Flower as a user opens it in a browser during a run: every worker under its own name, and
each task named by its run, model and story; behind basic auth, or on loopback for
`evalfleet run --flower`."""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser import page_dom, page_until, table_rows
from fleet import RunWatcher, clean_env, fleet_env, logs, run_args
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from evalfleet.fleet import evalfleet_command
from evalfleet.flower import AUTH_ENV, LocalFlower
from evalfleet.schema.models import Item, Run, Story
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.server import SimServer

pytestmark = pytest.mark.integration

USER, PASSWORD = "operator", "flower-test-password"
LABELS_APART = "; "  # a task of several short items lists their labels (answer_items_label)
STORIES, TURNS = 5, 6  # 10 tasks: all on the first page of Flower's tasks table (15 rows)
NODE = re.compile(r"(\S+@\S+) ready\.")


def story_dataset(folder: Path) -> Path:
    """Stories whose keys no other test uses, so that their tasks are recognisably ours."""
    tag = uuid.uuid4().hex[:8]
    path = folder / "stories.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i in range(STORIES):
            record = {
                "id": f"flower-{tag}-{i}",
                "source": "wikipedia",
                "story": f"Robin {i} lives in town {i}. Robin {i} walks to work every day.",
                "questions": [f"Where does Robin {i} live? ({t})" for t in range(TURNS)],
                "answers": {"input_text": [f"town {i}"] * TURNS},
            }
            out.write(json.dumps(record) + "\n")
    return path


def own_events_db(redis_url: str) -> str:
    """The same Redis on another database number: Celery's events (what Flower shows) are
    published per database, so no other test's workers or tasks reach this Flower."""
    return urlsplit(redis_url)._replace(path=f"/{random.randint(1, 15)}").geturl()


@contextlib.contextmanager
def unnamed_workers(count: int, env: dict[str, str], log_dir: Path) -> Iterator[list[str]]:
    """`evalfleet worker` processes started as a user would, without --name; yields the
    node names each announces once it consumes."""
    log_dir.mkdir(parents=True, exist_ok=True)
    processes, paths = [], [log_dir / f"worker{i}.log" for i in range(count)]
    for path in paths:
        with path.open("wb") as log:
            command = evalfleet_command("worker", "--concurrency", "2")
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
    try:
        names: list[str] = []
        deadline = time.monotonic() + 60
        while len(names) < count:
            assert time.monotonic() < deadline, "workers did not start:\n" + logs(log_dir)
            assert all(p.poll() is None for p in processes), "a worker exited:\n" + logs(log_dir)
            found = [NODE.search(path.read_text(errors="replace")) for path in paths]
            names = [match.group(1) for match in found if match]
            time.sleep(0.2)
        yield names
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def status_without(url: str, credentials: str | None) -> int:
    request = urllib.request.Request(url)
    if credentials:
        request.add_header("Authorization", "Basic " + b64encode(credentials.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def with_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{USER}:{PASSWORD}@{parts.netloc}").geturl()


def expected_labels(database_url: str) -> set[str]:
    """What each task of the run should read as: its run, model label, story and item."""
    engine = create_engine(database_url)
    with Session(engine) as session:
        rows = session.execute(
            select(Item.run_id, Item.model_label, Story.key, Item.id).join(
                Story, Story.id == Item.story_id
            )
        ).all()
    engine.dispose()
    return {f"run {run} {label} story {key} item {item}" for run, label, key, item in rows}


def first_run_id(database_url: str, timeout: float = 60) -> int:
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with Session(engine) as session:
                run_id = session.scalar(select(Run.id).order_by(Run.id))
            if run_id is not None:
                return int(run_id)
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise AssertionError(f"no run created within {timeout}s")


def test_flower_behind_basic_auth_names_every_worker_and_each_tasks_run_model_and_story(
    postgres_url: str, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    # Given the simulator, PostgreSQL, Redis, Flower behind basic auth, and two
    # `evalfleet worker` processes on this one host, started without a name
    dataset = story_dataset(tmp_path)
    with SimServer(SimConfig(latency_ms_mean=300)) as sim:
        env = fleet_env(postgres_url, own_events_db(redis_url), queue_name, sim.base_url)
        # Task events from the first task, as an operator watching in Flower sets (without
        # it, Flower turns them on within 5 s: this run's tasks may all be done by then)
        env["EVALFLEET_TASK_EVENTS"] = "true"
        assert subprocess.run(evalfleet_command("db", "upgrade"), env=env).returncode == 0
        flower_env = {**env, AUTH_ENV: f"{USER}:{PASSWORD}"}
        with (
            LocalFlower(flower_env, tmp_path / "logs") as flower,
            unnamed_workers(2, env, tmp_path / "logs") as names,
        ):
            # When a user runs both models, and opens Flower while the run goes on
            run = subprocess.Popen(
                evalfleet_command(*run_args(dataset, "--wait", "--json")),
                env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            run_id = first_run_id(postgres_url)
            watcher = RunWatcher(postgres_url)
            watcher.wait_for_answers(run_id, 1)
            watcher.close()
            profile, expected = tmp_path / "chromium", expected_labels(postgres_url)
            workers_page = page_until(
                with_credentials(f"{flower.url}workers"), profile, lambda dom: lists(dom, names)
            )
            tasks_page = page_until(
                with_credentials(f"{flower.url}tasks"), profile, lambda dom: shows(dom, expected)
            )
            anonymous_page = page_dom(f"{flower.url}workers", tmp_path / "chromium-anonymous")
            statuses = {
                "none": status_without(f"{flower.url}workers", None),
                "wrong": status_without(f"{flower.url}workers", f"{USER}:wrong-password"),
                "api": status_without(f"{flower.url}api/workers", None),
                "right": status_without(f"{flower.url}workers", f"{USER}:{PASSWORD}"),
            }
            stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr + logs(tmp_path)
    assert json.loads(stdout)["state"] == "done"
    # Then the two workers have names of their own: the process id, then the host
    host = socket.gethostname()
    assert len(set(names)) == 2, names
    assert all(re.fullmatch(rf"evalfleet-\d+-[0-9a-f]{{4}}@{re.escape(host)}", n) for n in names)
    # And Flower's workers page lists each of them once, online
    workers = {row["Worker"]: row for row in table_rows(workers_page, "workers-table")}
    assert set(names) <= set(workers), workers_page[-3000:]
    assert all(workers[name]["Status"] == "Online" for name in names)
    assert f"celery@{host}" not in workers
    # And its tasks page shows every task of the run by its run, model and story, and by
    # the worker that took it
    # (short items several to a task: its args list each of them)
    rows = table_rows(tasks_page, "tasks-table")
    shown = {label: row for row in rows for label in row["args"].split(LABELS_APART)}
    assert len(expected) == STORIES * 2
    assert all(label.startswith(f"run {run_id} ") for label in expected)
    assert expected <= set(shown), rows
    taken = [shown[label]["Worker"] for label in expected if shown[label]["Worker"]]
    assert taken and set(taken) <= set(names)
    names_shown = {shown[label]["Name"] for label in expected}
    assert names_shown <= {"evalfleet.answer_item", "evalfleet.answer_items"}, names_shown
    # And without the password nobody sees any of it
    assert statuses == {"none": 401, "wrong": 401, "api": 401, "right": 200}
    assert not any(name in anonymous_page for name in names)


def test_run_with_flower_lets_a_user_watch_a_local_run_and_stops_flower_at_its_end(
    tmp_path: Path,
) -> None:
    # Given the embedded default (no broker or database configured) and the simulator
    dataset = story_dataset(tmp_path)
    with SimServer(SimConfig(latency_ms_mean=300)) as sim:
        env = clean_env(TOGETHER_BASE_URL=sim.base_url)
        # When a user runs with --flower and opens the URL it prints
        with (tmp_path / "run.err").open("w") as err:
            command = evalfleet_command(*run_args(dataset, "--json", "--flower"))
            run = subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=err, text=True
            )
        url = wait_for_url(tmp_path / "run.err", run)
        host = socket.gethostname()
        local = [f"local0@{host}", f"local1@{host}"]
        workers_page = page_until(f"{url}workers", tmp_path / "chromium", lambda d: lists(d, local))
        expected = expected_labels(f"sqlite:///{tmp_path / 'evalfleet.db'}")
        tasks_page = page_until(f"{url}tasks", tmp_path / "chromium", lambda d: shows(d, expected))
        stdout, _ = run.communicate(timeout=300)
    # Then the run ends well, and Flower showed its two local workers and its tasks
    assert run.returncode == 0, (tmp_path / "run.err").read_text() + logs(tmp_path / ".evalfleet")
    assert json.loads(stdout)["state"] == "done"
    assert urlsplit(url).hostname == "127.0.0.1"
    workers = {row["Worker"] for row in table_rows(workers_page, "workers-table")}
    assert set(local) <= workers
    shown = {
        label for row in table_rows(tasks_page, "tasks-table")
        for label in row["args"].split(LABELS_APART)
    }  # fmt: skip
    assert len(expected) == STORIES * 2 and expected <= shown
    # And Flower stopped with the run
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)


def test_flower_turns_task_events_on_in_a_worker_started_without_them(
    postgres_url: str, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    # Given Flower on loopback and a worker started with the default settings: no task
    # events (three Redis publishes per task that only Flower reads)
    dataset = story_dataset(tmp_path)
    log_dir = tmp_path / "logs"
    with SimServer(SimConfig(latency_ms_mean=300)) as sim:
        env = fleet_env(postgres_url, own_events_db(redis_url), queue_name, sim.base_url)
        assert subprocess.run(evalfleet_command("db", "upgrade"), env=env).returncode == 0
        flower_env = {**env, AUTH_ENV: f"{USER}:{PASSWORD}"}  # Flower's API asks for it
        with (
            LocalFlower(flower_env, log_dir) as flower,
            unnamed_workers(1, env, log_dir) as [name],
        ):
            # When Flower's enable_events broadcast (every 5 s) has reached it
            deadline = time.monotonic() + 30
            while "enabled by remote" not in (log_dir / "worker0.log").read_text("utf-8"):
                assert time.monotonic() < deadline, logs(log_dir)
                time.sleep(0.2)
            # And a run goes through it
            run = subprocess.run(
                evalfleet_command(*run_args(dataset, "--wait", "--json")),
                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            expected = expected_labels(postgres_url)
            deadline = time.monotonic() + 30
            while not expected <= set(done_tasks(flower.url, name)):
                assert time.monotonic() < deadline, done_tasks(flower.url, name)
                time.sleep(0.5)
    # Then Flower lists every task of the run, done by that worker
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(expected) == STORIES * 2


def done_tasks(url: str, worker: str) -> list[str]:
    """The labels of the tasks Flower's API shows succeeded on `worker`."""
    request = urllib.request.Request(f"{url}api/tasks")
    request.add_header(
        "Authorization", "Basic " + b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        tasks = json.loads(response.read())
    return [
        label for task in tasks.values()
        if task.get("state") == "SUCCESS" and task.get("worker") == worker
        for label in task["args"].split(LABELS_APART)
    ]  # fmt: skip


def lists(dom: str, names: list[str]) -> bool:
    return set(names) <= {row["Worker"] for row in table_rows(dom, "workers-table")}


def shows(dom: str, labels: set[str]) -> bool:
    rows = table_rows(dom, "tasks-table")
    return labels <= {label for row in rows for label in row["args"].split(LABELS_APART)}


def wait_for_url(stderr_path: Path, run: subprocess.Popen[str], timeout: float = 60) -> str:
    """Flower's URL, once the run's tasks are queued (the line after it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = stderr_path.read_text(errors="replace")
        found = re.search(r"Flower on (http://\S+/)", text)
        if found and "items queued" in text:
            return found.group(1)
        assert run.poll() is None, stderr_path.read_text()
        time.sleep(0.2)
    raise AssertionError("no Flower URL printed:\n" + stderr_path.read_text())
