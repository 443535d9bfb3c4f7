"""The JSON documents of a fixed run stay what they were: same keys, same order, same values.

The fixtures were written by the code that built the summary as a plain dict; the typed
summary (aggregator/summary_types.py) must serialize to the very same text: what
`status --json`, `report --format json` and `compare --format json` print."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, three_story_run

from evalfleet.aggregator.cross_run import compare_runs
from evalfleet.aggregator.report_data import report_json, run_report
from evalfleet.aggregator.summary import run_summary
from evalfleet.schema.models import Item, Run

FIXTURES = Path(__file__).parent / "fixtures"
CREATED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
FINISHED = datetime(2024, 5, 6, 7, 9, 30, tzinfo=UTC)


def _text(document: dict[str, Any]) -> str:
    """As the CLI prints it (cli.options.print_json, report --format json), but on one line:
    the same keys in the same order and the same values, in a fixture file of one line."""
    return json.dumps(document, ensure_ascii=False) + "\n"


def _fixed_run(sessions: sessionmaker[Session]) -> int:
    """The hand-answered three-story run, its clock fixed so the progress figures are too;
    priced, with API calls and 429s, so that cost and rates are not all zero."""
    run_id = three_story_run(sessions)
    with sessions.begin() as session:
        run = session.get_one(Run, run_id)
        config = dict(run.config)
        config["prices"] = {"base": [0.2, 0.6], "finetuned": [0.9, 0.9]}
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(created_at=CREATED, finished_at=FINISHED, config=config)
        )
        session.execute(
            update(Item).where(Item.run_id == run_id).values(api_calls=3, rate_limited=1)
        )
    return run_id


def _documents(tmp_path: Path) -> dict[str, str]:
    _, sessions = database(tmp_path)
    first, second = _fixed_run(sessions), _fixed_run(sessions)
    with sessions() as session:
        return {
            "status": _text(run_summary(session, first).to_json()),
            "report": _text(report_json(run_report(session, first))),
            "compare": _text(report_json(compare_runs(session, first, second, None, "finetuned"))),
        }


def test_the_json_documents_of_a_fixed_run_are_unchanged(tmp_path: Path) -> None:
    for name, text in _documents(tmp_path).items():
        assert text == (FIXTURES / f"{name}.json").read_text(encoding="utf-8"), name
