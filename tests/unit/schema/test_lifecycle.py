"""Every item and run transition, from schema/lifecycle.py, on SQLite (the integration tests
run the same statements on PostgreSQL, under concurrent workers)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.schema import lifecycle
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import Item, ItemState, Run, RunState, utcnow
from evalfleet.schema.payloads import RunConfig

STORIES = {
    "s0": ("wikipedia", "Tom had a cat.", [("Who had a cat?", "Tom")]),
    "s1": ("cnn", "Ann had a dog.", [("Who had a dog?", "Ann")]),
}


def a_run(tmp_path: Path) -> tuple[sessionmaker[Session], int, list[int]]:
    _url, sessions = database(tmp_path)
    config = RunConfig(models={"base": "org/base", "tuned": "org/tuned"})
    run_id = create_run(sessions, tiny_dataset(STORIES), config)
    with sessions() as session:
        ids = list(session.scalars(select(Item.id).where(Item.run_id == run_id).order_by(Item.id)))
    return sessions, run_id, ids


def states(sessions: sessionmaker[Session], run_id: int) -> tuple[str, list[str]]:
    with sessions() as session:
        run = session.get_one(Run, run_id)
        items = session.scalars(select(Item.state).where(Item.run_id == run_id).order_by(Item.id))
        return run.state, list(items)


def test_a_claimed_item_is_held_until_its_lease_ends_or_a_retry_takes_it_over(
    tmp_path: Path,
) -> None:
    # Given a pending item
    sessions, _run_id, (item, *_) = a_run(tmp_path)
    now = utcnow()
    with session_scope(sessions) as session:
        # When one delivery claims it, a second cannot while the lease lasts
        first = lifecycle.claim_item(session, item, 60.0, takeover=False, now=now)
        second = lifecycle.claim_item(session, item, 60.0, takeover=False, now=now)
        # Then the retry of the holder takes it over, and after the lease anyone may
        takeover = lifecycle.claim_item(session, item, 60.0, takeover=True, now=now)
        later = lifecycle.claim_item(
            session, item, 60.0, takeover=False, now=now + timedelta(seconds=61)
        )
    assert first == lifecycle.Claim(attempts=1, last_error=None)
    assert second is None
    assert takeover is not None and takeover.attempts == 2
    assert later is not None and later.attempts == 3


def test_a_handed_back_item_is_pending_with_its_reason_and_a_closed_item_keeps_its_outcome(
    tmp_path: Path,
) -> None:
    sessions, run_id, (item, other, *_) = a_run(tmp_path)
    with session_scope(sessions) as session:
        lifecycle.claim_item(session, item, 60.0, takeover=False, now=utcnow())
        lifecycle.hand_back(session, item, "429 from the API")
        lifecycle.close_item(session, other, ItemState.DONE, None)
        # a late failure of an item already done changes nothing
        lifecycle.close_item(session, other, ItemState.FAILED, "too late")
    with sessions() as session:
        handed = session.get_one(Item, item)
        closed = session.get_one(Item, other)
        assert (handed.state, handed.last_error, handed.lease_until) == (
            ItemState.PENDING.value, "429 from the API", None
        )  # fmt: skip
        assert (closed.state, closed.last_error) == (ItemState.DONE.value, None)


def test_a_stopped_run_fails_its_open_items_and_an_unknown_model_fails_only_its_own(
    tmp_path: Path,
) -> None:
    sessions, run_id, _ids = a_run(tmp_path)
    with session_scope(sessions) as session:
        lifecycle.fail_model(session, run_id, "tuned", "model not found")
    with sessions() as session:
        by_model = dict(session.execute(select(Item.model_label, Item.state)).all())
    assert by_model == {"base": ItemState.PENDING.value, "tuned": ItemState.FAILED.value}
    with session_scope(sessions) as session:
        lifecycle.stop_run(session, run_id, "the API refused the key")
    run_state, item_states = states(sessions, run_id)
    assert run_state == RunState.FAILED.value
    assert set(item_states) == {ItemState.FAILED.value}


def test_aggregation_is_claimed_once_only_when_no_item_is_open_and_results_once(
    tmp_path: Path,
) -> None:
    sessions, run_id, ids = a_run(tmp_path)
    # While an item is open, nobody claims the aggregation
    with session_scope(sessions) as session:
        lifecycle.close_items(session, Item.id.in_(ids[:-1]), ItemState.DONE, None)
    assert lifecycle.claim_aggregation(sessions, run_id) is False
    with session_scope(sessions) as session:
        lifecycle.close_item(session, ids[-1], ItemState.DONE, None)
    # Then exactly one of two callers claims it, and exactly one claims the results
    assert [lifecycle.claim_aggregation(sessions, run_id) for _ in range(2)] == [True, False]
    with session_scope(sessions) as session:
        claims = [lifecycle.claim_results(session, run_id) for _ in range(2)]
    assert claims == [True, False]
    with sessions() as session:
        run = session.get_one(Run, run_id)
        assert (run.state, run.aggregations) == (RunState.DONE.value, 1)


def test_reset_for_retry_reopens_failed_items_as_never_sent_and_the_run_as_running(
    tmp_path: Path,
) -> None:
    sessions, run_id, (item, *_) = a_run(tmp_path)
    with session_scope(sessions) as session:
        lifecycle.mark_enqueued(session, [item])
        lifecycle.stop_run(session, run_id, "the API refused the key")
        lifecycle.reset_for_retry(session, run_id, [item])
    with sessions() as session:
        reset = session.get_one(Item, item)
        run = session.get_one(Run, run_id)
        assert (reset.state, reset.attempts, reset.enqueued_at, reset.last_error) == (
            ItemState.PENDING.value, 0, None, None
        )  # fmt: skip
        assert (run.state, run.error) == (RunState.RUNNING.value, None)
