"""Status, reports and export of a large run: this checkout against an earlier commit.

    .venv/bin/python bench/report_speed.py [--before 8427138] [--repeats 3] [--stories N]

Builds the full SQuAD v1.1 dev set (2,067 paragraphs, 10,570 questions; ../shared/data) as a
finished run of two models straight in SQL, in a throwaway PostgreSQL database: the producer's
create_run, then one synthetic answer per (model, question) (the first reference or a span of
the story, deterministic), items done. Both versions' code run as `python -m evalfleet` from
their own import path (a tree of links laid out as the package installs, the --before commit
unpacked with `git archive`), on the same database, alternating run by run, each figure the
median of --repeats (the machine is shared: bench/README.md):

- aggregation: `aggregate_run` of each version (this one also stores the analysis);
- `status` of the done run (`status_done_s`; `status_s` is this version's), and of the same
  run set back to running (`status_running_s`: counts only now);
- `report` in each format, and the four formats in one command (this version; before: the
  sum of four commands), `export`;
- `cli_start_s`: `evalfleet --help`, the imports every command pays.

Each done-run output of this version is compared with the earlier one's (`same_output`).
Prints progress lines starting with '#', then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from progress import say
from sqlalchemy import insert, select, update

from evalfleet.producer.create_run import create_run
from evalfleet.producer.dataset import Dataset
from evalfleet.producer.loaders.squad import load_squad
from evalfleet.schema.db import make_engine, make_sessionmaker, session_scope
from evalfleet.schema.migrate import upgrade
from evalfleet.schema.models import Answer, Item, ItemState, Run, RunState, Story
from evalfleet.schema.payloads import RunConfig
from evalfleet.scratch_database import fresh_database, wait_for_postgres
from evalfleet.simulator.config import DEMO_MODELS

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "squad" / "squad-dev-v1.1.json"
ADMIN_URL = os.environ.get("EVALFLEET_BENCH_ADMIN_URL", "postgresql://root@127.0.0.1:5432/postgres")
SUBPACKAGES = ("schema", "producer", "workers", "aggregator", "simulator")
RIGHT_SHARE = {"base": 0.55, "finetuned": 0.70}  # answers that are the first reference
FORMATS = ("table", "json", "markdown", "html")
RESTARTED = (b"AdminShutdown", b"Connection refused", b"the database system is")
RESTART_TRIES = 4


def import_root(source: Path, into: Path) -> Path:
    """A folder whose `evalfleet` package is `source`'s code, laid out as it installs."""
    package = into / "evalfleet"
    package.mkdir(parents=True)
    for entry in (source / "evalfleet").iterdir():
        (package / entry.name).symlink_to(entry)
    for name in SUBPACKAGES:
        (package / name).symlink_to(source / name)
    return into


def unpack(ref: str, into: Path) -> Path:
    """The tree of commit `ref`, without touching the repository's worktrees."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def synthetic_answers(
    dataset: Dataset, story_ids: dict[str, int], run_id: int
) -> list[dict[str, Any]]:
    """One answer per (model, question): the first reference, or a few words of the story;
    1% cut at max_tokens. Seeded: the same rows every time."""
    rng = random.Random(0)
    rows = []
    for label in DEMO_MODELS:
        for story in dataset.stories:
            words = story.text.split()
            for q in story.questions:
                if q.references and rng.random() < RIGHT_SHARE[label]:
                    text = q.references[0]
                else:
                    start = rng.randrange(len(words))
                    text = " ".join(words[start : start + rng.randint(1, 12)])
                rows.append({
                    "run_id": run_id, "model_label": label, "story_id": story_ids[story.key],
                    "turn": q.turn, "text": text, "prompt_tokens": 300,
                    "completion_tokens": len(text.split()), "latency_ms": 200.0,
                    "finish_reason": "length" if rng.random() < 0.01 else "stop",
                })  # fmt: skip
    return rows


def build_run(url: str, limit: int | None) -> tuple[int, int]:
    """The finished run (awaiting its aggregation) and its number of answers."""
    dataset = load_squad(SQUAD, limit=limit)
    sessions = make_sessionmaker(make_engine(url))
    run_id = create_run(sessions, dataset, RunConfig(models=DEMO_MODELS))
    with session_scope(sessions) as session:
        rows = session.execute(select(Story.key, Story.id).where(Story.run_id == run_id))
        answers = synthetic_answers(dataset, {r.key: r.id for r in rows}, run_id)
        session.execute(insert(Answer), answers)
        session.execute(update(Item).values(state=ItemState.DONE.value))
    set_state(url, RunState.AGGREGATING)
    return run_id, len(answers)


def set_state(url: str, state: RunState) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(update(Run).values(state=state.value))
    engine.dispose()


class Cli:
    """`python -m evalfleet` of one version, on the bench database, timed."""

    def __init__(self, name: str, root: Path, url: str, cwd: Path) -> None:
        self.name, self.root, self.cwd = name, root, cwd
        self.env = {**os.environ, "PYTHONPATH": str(root), "EVALFLEET_DATABASE_URL": url,
                    "COLUMNS": "200"}  # fmt: skip

    restarts = 0  # commands measured again: PostgreSQL restarted under them (another bench)

    def run(self, *args: str) -> tuple[float, bytes]:
        for _ in range(RESTART_TRIES):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "evalfleet", *args], env=self.env, cwd=self.cwd,
                capture_output=True, check=False,
            )  # fmt: skip
            elapsed = time.perf_counter() - started
            if done.returncode == 0:
                return elapsed, done.stdout
            if not any(sign in done.stderr for sign in RESTARTED):
                break
            Cli.restarts += 1
            say(f"PostgreSQL restarted during {self.name} {args[:3]}: measured again")
            wait_for_postgres(ADMIN_URL)
        raise RuntimeError(f"{self.name} {args}: {done.stderr.decode()[-2000:]}")

    def aggregate(self, run_id: int) -> float:
        code = (
            "import sys, time\n"
            "from evalfleet.aggregator.aggregate import aggregate_run\n"
            "from evalfleet.schema.db import make_engine, make_sessionmaker\n"
            "sessions = make_sessionmaker(make_engine(sys.argv[1]))\n"
            "t = time.perf_counter(); assert aggregate_run(sessions, int(sys.argv[2]))\n"
            "print(time.perf_counter() - t)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, self.env["EVALFLEET_DATABASE_URL"], str(run_id)],
            env=self.env, cwd=self.cwd, capture_output=True, check=True, text=True,
        )  # fmt: skip
        return float(done.stdout.split()[-1])


def report_args(run_id: int, fmt: str, out: Path) -> list[str]:
    return ["report", str(run_id), "--format", fmt, "--out", str(out)]


def outputs_of(cli: Cli, run_id: int, folder: Path) -> dict[str, bytes]:
    """Every done-run output of one version, for the comparison."""
    folder.mkdir()
    found = {"status": cli.run("status", str(run_id))[1]}
    found["status_json"] = json_without_clock(cli.run("status", str(run_id), "--json")[1])
    for fmt in FORMATS:
        cli.run(*report_args(run_id, fmt, folder / f"r.{fmt}"))
        found[fmt] = (folder / f"r.{fmt}").read_bytes()
    found["json"] = json_without_clock(found["json"])
    found["export"] = cli.run("export", str(run_id))[1]
    return found


def json_without_clock(text: bytes) -> bytes:
    document = json.loads(text)
    document.pop("progress", None)
    document.pop("finished_at", None)
    return json.dumps(document, sort_keys=True).encode()


def pair(before: float, after: float) -> dict[str, float]:
    return {"before": before, "after": after, "speedup": round(before / after, 2)}


def measure(clis: dict[str, Cli], run_id: int, out: Path, repeats: int) -> dict[str, Any]:
    """Median wall time of every command, per version; the versions alternate run by run, so
    the machine's load (shared, noisy) falls on both alike."""
    times: dict[str, dict[str, float]] = {}

    def timed(name: str, versions: tuple[str, ...], *args: str) -> None:
        samples: dict[str, list[float]] = {v: [] for v in versions}
        for _ in range(repeats):
            for version in versions:
                samples[version].append(clis[version].run(*args)[0])
        times[name] = {v: round(statistics.median(samples[v]), 3) for v in versions}

    both = ("before", "after")
    timed("cli_start", both, "--help")
    timed("status_done", both, "status", str(run_id))
    timed("status_json", both, "status", str(run_id), "--json")
    for fmt in FORMATS:
        timed(f"report_{fmt}", both, *report_args(run_id, fmt, out / f"r.{fmt}"))
    timed("export", both, "export", str(run_id), "--out", str(out / "answers.jsonl"))
    every = [a for fmt in FORMATS for a in report_args(run_id, fmt, out / f"all.{fmt}")[2:]]
    timed("report_all_formats", ("after",), "report", str(run_id), *every)
    times["report_all_formats"]["before"] = round(
        sum(times[f"report_{f}"]["before"] for f in FORMATS), 3
    )
    return times


def measure_aggregation(
    clis: dict[str, Cli], url: str, run_id: int, repeats: int
) -> dict[str, float]:
    """Median time of `aggregate_run` per version, alternating; this version's last."""
    samples: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(repeats):
        for version in samples:
            set_state(url, RunState.AGGREGATING)
            samples[version].append(clis[version].aggregate(run_id))
    return {v: round(statistics.median(t), 3) for v, t in samples.items()}


def measure_running(clis: dict[str, Cli], url: str, run_id: int, repeats: int) -> dict[str, float]:
    """`status` of the run while it is (set back to) running: no stored analysis to read."""
    set_state(url, RunState.RUNNING)
    try:
        samples: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(repeats):
            for version in samples:
                samples[version].append(clis[version].run("status", str(run_id))[0])
        return {v: round(statistics.median(t), 3) for v, t in samples.items()}
    finally:
        set_state(url, RunState.DONE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="8427138", help="the commit to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stories", type=int, default=None, help="first N paragraphs only")
    options = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="report-speed-") as tmp,
        fresh_database(ADMIN_URL, "evalfleet_report_speed_") as database,
    ):
        folder = Path(tmp)
        roots = {
            "before": import_root(unpack(options.before, folder / "before-src"), folder / "before"),
            "after": import_root(ROOT, folder / "after"),
        }
        upgrade(database.url)  # this version's schema: the earlier one ignores the new table
        say(f"building the run in {database.name}")
        run_id, answers = build_run(database.url, options.stories)
        clis = {v: Cli(v, roots[v], database.url, folder) for v in roots}
        aggregation = measure_aggregation(clis, database.url, run_id, options.repeats)
        say(f"{answers} answers; aggregation {aggregation}")
        outputs = {v: outputs_of(clis[v], run_id, folder / f"out-{v}") for v in clis}
        same = {
            name: outputs["before"][name] == outputs["after"][name] for name in outputs["after"]
        }
        say(f"same output: {same}")
        (folder / "times").mkdir()
        times = measure(clis, run_id, folder / "times", options.repeats)
        running = measure_running(clis, database.url, run_id, options.repeats)
    figures = {name: pair(t["before"], t["after"]) for name, t in times.items()}
    figures["status_running"] = pair(running["before"], running["after"])
    per_10k = {
        v: round(times["report_all_formats"][v] / 4 / answers * 10_000, 3)
        for v in ("before", "after")
    }
    result = {
        "answers": answers,
        "before": options.before,
        "repeats": options.repeats,
        "aggregation_s": pair(aggregation["before"], aggregation["after"]),
        **{f"{name}_s": value for name, value in figures.items()},
        "report_s_per_10k_answers": per_10k,
        "status_s": times["status_done"]["after"],  # the figure: a done run's status
        "same_output": same,
        "postgres_restarts": Cli.restarts,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
