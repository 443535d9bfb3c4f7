"""A delivery's start: the claim of its item, and what its work reads (SQLite here; the
integration tests run the same code on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, tiny_dataset
from unit.cli.sql_statements import recorded_statements

from evalfleet.producer.create_run import create_run
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import Answer, Item, ItemState, Judgement, Run, RunState, utcnow
from evalfleet.schema.payloads import JudgeConfig, RunConfig
from evalfleet.schema.settings import Settings
from evalfleet.workers.delivery import start_delivery

STORIES = {
    "s0": ("wikipedia", "Tom had a cat.", [("Who had a cat?", "Tom"), ("What?", "a cat")]),
}
SETTINGS = Settings(EVALFLEET_LEASE_S=60.0, EVALFLEET_MAX_ATTEMPTS=2)


def one_item(tmp_path: Path, judge: str | None = None) -> tuple[sessionmaker[Session], int, int]:
    _url, sessions = database(tmp_path)
    config = RunConfig(
        models={"base": "org/base"}, judge=None if judge is None else JudgeConfig(model=judge)
    )
    run_id = create_run(sessions, tiny_dataset(STORIES), config)
    with sessions() as session:
        item_id = session.scalars(select(Item.id).where(Item.run_id == run_id)).one()
    return sessions, run_id, item_id


def item_state(sessions: sessionmaker[Session], item_id: int) -> tuple[str, int]:
    with sessions() as session:
        item = session.get_one(Item, item_id)
        return item.state, item.attempts


def test_a_pending_item_is_claimed_with_its_story_its_questions_and_its_stored_answers(
    tmp_path: Path,
) -> None:
    # Given an item whose first turn was answered by an earlier delivery
    sessions, run_id, item_id = one_item(tmp_path)
    with sessions() as session:
        story_id = session.get_one(Item, item_id).story_id
    with session_scope(sessions) as session:
        session.add(Answer(run_id=run_id, model_label="base", story_id=story_id, turn=1,
                           text="Tom", attempts=1, cached=False, created_at=utcnow()))  # fmt: skip
    # When a delivery starts
    delivery = start_delivery(sessions, item_id, SETTINGS)
    # Then it holds the item, counted once, with everything its work needs
    assert delivery.run_id == run_id and delivery.retry_in_s is None
    work = delivery.work
    assert work is not None
    assert (work.label, work.model, work.story_key, work.story_text) == (
        "base", "org/base", "s0", "Tom had a cat."
    )  # fmt: skip
    assert work.questions == ((1, "Who had a cat?", ("Tom",)), (2, "What?", ("a cat",)))
    assert work.stored == {1: "Tom"}
    assert item_state(sessions, item_id) == (ItemState.RUNNING.value, 1)


def test_a_judged_item_reads_the_turns_its_judge_graded_in_the_statement_of_its_work(
    tmp_path: Path,
) -> None:
    # Given a judged item whose two turns were answered, turn 1 graded by the run's judge and
    # turn 2 only by another judge
    sessions, run_id, item_id = one_item(tmp_path, judge="org/judge")
    with sessions() as session:
        story_id = session.get_one(Item, item_id).story_id
    with session_scope(sessions) as session:
        for turn, judge in ((1, "org/judge"), (2, "other/judge")):
            key = {"run_id": run_id, "model_label": "base", "story_id": story_id, "turn": turn}
            session.add(Answer(**key, text="Tom", attempts=1, cached=False, created_at=utcnow()))
            session.add(Judgement(**key, judge=judge, verdict="correct"))
    # When a delivery starts
    with recorded_statements() as statements:
        delivery = start_delivery(sessions, item_id, SETTINGS)
    # Then its work knows turn 1 is graded and turn 2 is not, each question read once
    work = delivery.work
    assert work is not None
    assert work.judged == {1}
    assert [turn for turn, *_ in work.questions] == [1, 2]
    assert work.stored == {1: "Tom", 2: "Tom"}
    # And it took the claim and the one read of its work, as an item without a judge does
    assert len(statements) == 2
    assert "judgements" in statements[1]


def test_a_second_delivery_while_the_lease_is_live_comes_back_after_it(tmp_path: Path) -> None:
    sessions, _run_id, item_id = one_item(tmp_path)
    start_delivery(sessions, item_id, SETTINGS)
    again = start_delivery(sessions, item_id, SETTINGS)
    # It does no work and waits about the lease out; the holder's delivery alone counts
    assert again.work is None
    assert again.retry_in_s is not None and 55 <= again.retry_in_s <= 62
    assert item_state(sessions, item_id) == (ItemState.RUNNING.value, 1)
    # A takeover (the holder's own retry) claims it at once
    taken = start_delivery(sessions, item_id, SETTINGS, takeover=True)
    assert taken.work is not None
    assert item_state(sessions, item_id) == (ItemState.RUNNING.value, 2)


def test_deliveries_past_the_limit_fail_the_item_with_its_last_error(tmp_path: Path) -> None:
    sessions, _run_id, item_id = one_item(tmp_path)
    with session_scope(sessions) as session:
        session.execute(
            update(Item).where(Item.id == item_id).values(attempts=2, last_error="lost")
        )
    delivery = start_delivery(sessions, item_id, SETTINGS)
    assert delivery.work is None
    with sessions() as session:
        item = session.get_one(Item, item_id)
        assert item.state == ItemState.FAILED.value
        assert item.last_error == "gave up after 2 deliveries: lost"


def test_a_closed_item_or_a_stopped_run_does_no_work(tmp_path: Path) -> None:
    sessions, run_id, item_id = one_item(tmp_path)
    with session_scope(sessions) as session:
        session.execute(
            update(Run).where(Run.id == run_id).values(state=RunState.FAILED.value, error="bad key")
        )
    stopped = start_delivery(sessions, item_id, SETTINGS)
    assert stopped.work is None and stopped.run_id == run_id
    with sessions() as session:
        item = session.get_one(Item, item_id)
        assert (item.state, item.last_error) == ("failed", f"run {run_id} stopped: bad key")
    closed = start_delivery(sessions, item_id, SETTINGS)
    assert closed.work is None and closed.retry_in_s is None
    assert start_delivery(sessions, 10_000, SETTINGS).run_id is None  # not in the database
