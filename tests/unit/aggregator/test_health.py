"""A model whose recent requests all fail the same way is named, with how, from SQL alone:
the reasons open items were handed back with, and the errors of answers stored lately."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.aggregator.health import ModelTrouble, failure_kind, troubled_models
from evalfleet.producer.create_run import create_run
from evalfleet.schema.models import Answer, Item, ItemState, Run, RunState, Story, utcnow
from evalfleet.schema.payloads import RunConfig
from evalfleet.simulator.config import DEMO_MODELS

REFUSED = "APIConnectionError: Connection error. (connection refused)"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (REFUSED, "API unreachable (connection refused)"),
        ("APIConnectionError: Connection error.", "API unreachable (connection error)"),
        ("failed after 6 tries: APIConnectionError: Connection error.",
         "API unreachable (connection error)"),
        ("APIConnectionError: [Errno -2] Name or service not known",
         "API unreachable (DNS lookup failed)"),
        ("APIConnectionError: TLS handshake failed (WRONG_VERSION_NUMBER)",
         "API unreachable (TLS error)"),
        ("APITimeoutError: Request timed out.", "API not answering (timeout)"),
        ("RateLimitError (429): Error code: 429 - {'error': 'slow down'}", "rate limited (429)"),
        ("InternalServerError (503): Error code: 503 - upstream connection error",
         "API answering HTTP 503"),
        ("APIConnectionError: Connection error. (connection cut mid-response)",
         "API cutting responses short (connection cut)"),
        ("InvalidResponseError: model m: the response has no choices",
         "API answering 200 without a chat completion"),
        ("ContentFilteredError: model m: the endpoint's content filter withheld it",
         "answers withheld by the content filter"),
        ("ValueError: Expecting value: line 1 column 1", "failing (ValueError)"),
    ],
)  # fmt: skip
def test_a_stored_reason_reads_as_how_requests_fail(reason: str, kind: str) -> None:
    assert failure_kind(reason) == kind


def test_the_line_names_the_model_the_failure_and_what_happens_next() -> None:
    trouble = ModelTrouble("base", ("API unreachable (connection refused)",), retrying=True)
    assert trouble.line == "base: API unreachable (connection refused), retrying"
    mixed = ModelTrouble("finetuned", ("a", "b", "c"), retrying=False)
    assert mixed.line == "finetuned: failing: a; b and 1 more, not retried"


def three_stories(tmp_path: Path) -> tuple[sessionmaker[Session], int]:
    _, sessions = database(tmp_path)
    stories = {key: ("cnn", "The mayor opened the bridge.", [("Who?", "the mayor")])
               for key in ("s1", "s2", "s3")}  # fmt: skip
    return sessions, create_run(sessions, tiny_dataset(stories), RunConfig(models=DEMO_MODELS))


def hand_back(sessions: sessionmaker[Session], run_id: int, label: str, reason: str) -> None:
    with sessions.begin() as session:
        session.execute(
            update(Item)
            .where(Item.run_id == run_id, Item.model_label == label)
            .values(state=ItemState.PENDING.value, last_error=reason, attempts=1)
        )


def answer(sessions: sessionmaker[Session], run_id: int, label: str, ago_s: float,
           error: str | None = None) -> None:  # fmt: skip
    with sessions.begin() as session:
        story_id = session.scalars(select(Story.id).where(Story.run_id == run_id)).first()
        session.add(Answer(
            run_id=run_id, model_label=label, story_id=story_id, turn=1,
            text=None if error else "the mayor", error=error,
            created_at=utcnow() - timedelta(seconds=ago_s),
        ))  # fmt: skip


def test_a_model_whose_items_were_all_handed_back_the_same_way_is_named(tmp_path: Path) -> None:
    sessions, run_id = three_stories(tmp_path)
    hand_back(sessions, run_id, "base", REFUSED)
    with sessions() as session:
        troubles = troubled_models(session, run_id)
    assert [t.line for t in troubles] == ["base: API unreachable (connection refused), retrying"]


def test_answers_still_arriving_mean_the_failures_are_absorbed(tmp_path: Path) -> None:
    sessions, run_id = three_stories(tmp_path)
    hand_back(sessions, run_id, "base", REFUSED)
    answer(sessions, run_id, "base", ago_s=1)
    with sessions() as session:
        assert troubled_models(session, run_id) == []


def test_answers_older_than_the_quiet_window_do_not_hide_it(tmp_path: Path) -> None:
    sessions, run_id = three_stories(tmp_path)
    hand_back(sessions, run_id, "finetuned", "RateLimitError (429): Error code: 429")
    answer(sessions, run_id, "finetuned", ago_s=60)
    with sessions() as session:
        troubles = troubled_models(session, run_id, quiet_s=15)
    assert [t.line for t in troubles] == ["finetuned: rate limited (429), retrying"]


def test_recent_failed_answers_count_and_mixed_kinds_are_listed(tmp_path: Path) -> None:
    sessions, run_id = three_stories(tmp_path)
    answer(sessions, run_id, "base", ago_s=2, error="BadRequestError (400): too long")
    with sessions() as session:
        only_answers = troubled_models(session, run_id)
    hand_back(sessions, run_id, "base", "APITimeoutError: Request timed out.")
    with sessions() as session:
        mixed = troubled_models(session, run_id)
    assert [t.line for t in only_answers] == ["base: API answering HTTP 400, not retried"]
    assert [t.kinds for t in mixed] == [("API not answering (timeout)", "API answering HTTP 400")]


def test_a_run_that_is_not_running_has_no_trouble_to_show(tmp_path: Path) -> None:
    sessions, run_id = three_stories(tmp_path)
    hand_back(sessions, run_id, "base", REFUSED)
    with sessions.begin() as session:
        session.execute(update(Run).where(Run.id == run_id).values(state=RunState.FAILED.value))
    with sessions() as session:
        assert troubled_models(session, run_id) == []
        assert troubled_models(session, run_id + 1) == []
