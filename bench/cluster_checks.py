"""What the cluster test checks after (and during) a run, as a user would: the answers in
SQL, the report's scores, the workers' own logs, and the compose Flower in headless Chromium
behind its basic auth."""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cluster_docker import ROOT, Compose, logs

from evalfleet.schema.payloads import ANSWER_TASKS

sys.path.insert(0, str(ROOT / "tests" / "integration"))
from browser import page_until, table_rows  # noqa: E402 - the project's Chromium helper

# Celery's start-up banner names the node: " -------------- evalfleet-7-1a2b@3f2a1b2c3d4e v5.x"
BANNER = re.compile(r"-{5,} (\S+@\S+) v\d")
# answer_item, or answer_items: several short items in one task (their labels joined by "; ")
ANSWERED = re.compile(r"Task evalfleet\.answer_items?\[[^\]]+\] succeeded")


def outcome(compose: Compose, run_id: int, expected: int) -> dict[str, Any]:
    """Answer rows, keys answered more than once, keys without an answer, aggregations."""
    (row,) = compose.psql(f"""
        SELECT (SELECT state FROM runs WHERE id = {run_id}),
               (SELECT count(*) FROM answers WHERE run_id = {run_id}),
               (SELECT count(*) FROM (SELECT 1 FROM answers WHERE run_id = {run_id}
                 GROUP BY model_label, story_id, turn HAVING count(*) > 1) AS d),
               (SELECT count(DISTINCT (model_label, story_id, turn)) FROM answers
                 WHERE run_id = {run_id} AND error IS NULL AND text IS NOT NULL),
               (SELECT aggregations FROM runs WHERE id = {run_id}),
               (SELECT count(*) FROM items WHERE run_id = {run_id} AND state = 'failed')""")
    state, answers, duplicates, answered, aggregations, failed = row
    return {
        "state": state,
        "expected_answers": expected,
        "answers": int(answers),
        "duplicates": int(duplicates),
        "missing": expected - int(answered),
        "aggregations": int(aggregations),
        "failed_items": int(failed),
    }


def answer_count(compose: Compose, run_id: int) -> int:
    try:
        rows = compose.psql(f"SELECT count(*) FROM answers WHERE run_id = {run_id}")
    except RuntimeError:  # psql failed (the database is busy or restarting): ask again later
        return 0
    return int(rows[0][0])


def run_state(compose: Compose, run_id: int) -> str | None:
    try:
        rows = compose.psql(f"SELECT state FROM runs WHERE id = {run_id}")
    except RuntimeError:
        return None
    return rows[0][0] if rows else None


def scores(compose: Compose, run_id: int) -> dict[str, dict[str, float | None]]:
    out = compose("run", "--rm", "--no-deps", "worker", "evalfleet", "report", str(run_id),
                  "--format", "json", timeout=300)  # fmt: skip
    report = json.loads(out[out.index("{") :])
    return {
        label: {"em": model["em"], "f1": model["f1"]} for label, model in report["models"].items()
    }


def node_names(log: str) -> list[str]:
    return BANNER.findall(log)


def workers_answering(compose: Compose) -> dict[str, int]:
    """Each worker node (a container restarted is a new node) and the answer tasks it
    finished, from every replica's log, stopped ones included."""
    seen: dict[str, int] = {}
    for container in compose.containers("worker", running_only=False):
        text = logs(container)
        starts = [(m.start(), m[1]) for m in BANNER.finditer(text)]
        for index, (at, name) in enumerate(starts):
            end = starts[index + 1][0] if index + 1 < len(starts) else len(text)
            seen[name] = seen.get(name, 0) + len(ANSWERED.findall(text, at, end))
    return {name: count for name, count in seen.items() if count}


def running_node_names(compose: Compose) -> list[str]:
    """The node name each running replica took at its last start."""
    return [names[-1] for c in compose.containers("worker") if (names := node_names(logs(c)))]


def every_node_name(compose: Compose) -> set[str]:
    """Every node name any replica took, stopped and killed ones included."""
    containers = compose.containers("worker", running_only=False)
    return {name for container in containers for name in node_names(logs(container))}


def check_flower(
    port: int, user: str, password: str, names: list[str], known: set[str], run_id: int
) -> dict[str, Any]:
    """Flower's workers and tasks pages in headless Chromium, logged in: every running worker
    (`names`) by its own name, and the run's tasks by their run, model and story, each taken
    by a worker of the cluster (`known`: stopped and killed ones too)."""
    base = f"http://{quote(user)}:{quote(password)}@127.0.0.1:{port}/"
    profile = Path(tempfile.mkdtemp(prefix="evalfleet-cluster-chromium-"))
    prefix = f"run {run_id} "

    def workers_of(dom: str) -> set[str]:
        return {row.get("Worker", "") for row in table_rows(dom, "workers-table")}

    def run_tasks(dom: str) -> list[dict[str, str]]:
        """The run's answer tasks (its aggregation task reads "run N aggregation")."""
        rows = table_rows(dom, "tasks-table")
        return [r for r in rows if r.get("args", "").startswith(prefix) and "story" in r["args"]]

    workers_dom = page_until(base + "workers", profile, lambda d: set(names) <= workers_of(d))
    tasks_dom = page_until(base + "tasks", profile, lambda d: bool(run_tasks(d)))
    listed = workers_of(workers_dom)
    tasks = run_tasks(tasks_dom)
    return {
        "workers_expected": len(names),
        "workers_listed": len(set(names) & listed),
        "every_worker_listed": set(names) <= listed,
        "run_task_rows": len(tasks),
        "task_rows_readable": bool(tasks)
        and all(t.get("Name") in ANSWER_TASKS for t in tasks)
        and all(
            re.fullmatch(rf"run {run_id} \S+ story \S+ item \d+", label)
            for t in tasks
            for label in t["args"].split("; ")
        )
        and all(t.get("Worker") in known for t in tasks if t.get("Worker")),
        "example_row": tasks[0] if tasks else None,
    }
