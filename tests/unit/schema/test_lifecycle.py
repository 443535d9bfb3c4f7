"""Every item and run transition, from schema/lifecycle.py, on SQLite (the integration tests
run the same statements on PostgreSQL, under concurrent workers)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.schema import lifecycle
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import Item, ItemState, Run, RunState, as_utc, utcnow
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
    with sessions() as session:
        row = session.get_one(Item, item)
        expected = lifecycle.Claim(1, None, row.run_id, row.model_label, row.story_id, 0)
    assert first == expected
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


def test_a_claim_takes_no_item_of_a_run_that_is_not_running(tmp_path: Path) -> None:
    # Given a run stopped by a configuration error, one of its items reopened by hand
    sessions, run_id, (item, *_) = a_run(tmp_path)
    with session_scope(sessions) as session:
        lifecycle.stop_run(session, run_id, "the API refused the key")
        session.execute(update(Item).where(Item.id == item).values(state="pending"))
    # When a delivery claims it, nothing changes: the caller fails it with the run's reason
    with session_scope(sessions) as session:
        assert lifecycle.claim_item(session, item, 60.0, takeover=True, now=utcnow()) is None
    with sessions() as session:
        assert (session.get_one(Item, item).state, session.get_one(Item, item).attempts) == (
            ItemState.PENDING.value, 0
        )  # fmt: skip


def test_close_each_closes_every_item_with_its_own_calls_and_names_runs_it_may_end(
    tmp_path: Path,
) -> None:
    # Given a run of four items, three held by deliveries, one of them failed meanwhile
    sessions, run_id, (first, second, third, fourth) = a_run(tmp_path)
    with session_scope(sessions) as session:
        for item in (first, second, third):
            lifecycle.claim_item(session, item, 60.0, takeover=False, now=utcnow())
        lifecycle.close_item(session, third, ItemState.FAILED, "retries exhausted")
    # When two of them close together, each with its delivery's API calls
    with session_scope(sessions) as session:
        may_end = lifecycle.close_each(
            session,
            [
                lifecycle.ItemClose(second, run_id, calls=7, rate_limited=2),
                lifecycle.ItemClose(first, run_id, calls=5),
                lifecycle.ItemClose(third, run_id, calls=1),
            ],
        )
    # Then both are done with their own counts, the failed one keeps its outcome, and the
    # run is not one this close may end: the fourth item is still open
    with sessions() as session:
        rows = {
            item.id: (item.state, item.api_calls, item.rate_limited, item.lease_until)
            for item in session.scalars(select(Item).where(Item.run_id == run_id))
        }
    assert rows[first] == (ItemState.DONE.value, 5, 0, None)
    assert rows[second] == (ItemState.DONE.value, 7, 2, None)
    assert rows[third][:2] == (ItemState.FAILED.value, 0)
    assert may_end == set()
    assert lifecycle.claim_aggregation(sessions, run_id) is False
    # And the close of the last open item names the run, whose aggregation is then claimed
    with session_scope(sessions) as session:
        assert lifecycle.close_each(session, [lifecycle.ItemClose(fourth, run_id)]) == {run_id}
    assert lifecycle.claim_aggregation(sessions, run_id) is True


def test_renew_lease_extends_every_running_item_it_names_in_one_call(tmp_path: Path) -> None:
    # Given two items held by deliveries whose leases are nearly over, and one pending
    sessions, _run_id, (first, second, pending, *_) = a_run(tmp_path)
    soon = utcnow() - timedelta(seconds=55)
    with session_scope(sessions) as session:
        for item in (first, second):
            lifecycle.claim_item(session, item, 60.0, takeover=False, now=soon)
    # When the process renews the leases of all three
    with session_scope(sessions) as session:
        lifecycle.renew_lease(session, [second, pending, first], 60.0)
    # Then both running items hold a lease of a minute from now; the pending one none
    with sessions() as session:
        leases = {i.id: i.lease_until for i in session.scalars(select(Item))}
    for item in (first, second):
        lease = leases[item]
        assert lease is not None and as_utc(lease) > utcnow() + timedelta(seconds=50)
    assert leases[pending] is None
