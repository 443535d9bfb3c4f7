"""close_each on PostgreSQL, with concurrent transactions: a close that skips the aggregation
claim holds an open item whose close waits for it, so the last close of the run always knows
it may be the last (docs/architecture.md, D3)."""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.schema import lifecycle
from evalfleet.schema.db import make_engine, make_sessionmaker, session_scope
from evalfleet.schema.lifecycle import ItemClose
from evalfleet.schema.migrate import upgrade
from evalfleet.schema.models import Item, utcnow
from evalfleet.schema.payloads import RunConfig

STORIES = {f"s{i}": ("wikipedia", f"Story {i}.", [("Who?", "Tom")]) for i in range(3)}


def three_running_items(url: str) -> tuple[sessionmaker[Session], int, list[int]]:
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    run_id = create_run(sessions, tiny_dataset(STORIES), RunConfig(models={"base": "m"}))
    with session_scope(sessions) as session:
        ids = list(session.scalars(select(Item.id).where(Item.run_id == run_id).order_by(Item.id)))
        for item_id in ids:
            lifecycle.claim_item(session, item_id, 60.0, takeover=False, now=utcnow())
    return sessions, run_id, ids


def test_a_close_that_skips_the_claim_makes_the_next_close_wait_and_the_last_one_claims(
    postgres_url: str,
) -> None:
    # Given a run of three running items
    sessions, run_id, (first, second, third) = three_running_items(postgres_url)
    # When the first closes, its transaction still open
    holder = sessions()
    assert lifecycle.close_each(holder, [ItemClose(first, run_id)]) == set()
    # Then the close of the item it holds waits until that transaction commits
    seen: list[set[int]] = []
    finished = threading.Event()

    def close_second() -> None:
        with session_scope(sessions) as session:
            seen.append(lifecycle.close_each(session, [ItemClose(second, run_id)]))
        finished.set()

    waiting = threading.Thread(target=close_second)
    waiting.start()
    assert not finished.wait(1.0)  # blocked on the holder's lock
    holder.commit()
    holder.close()
    waiting.join(30)
    # And that close sees the first committed: the third is open, so it skips the claim too
    assert seen == [set()]
    assert lifecycle.claim_aggregation(sessions, run_id) is False
    # And the last close names the run, whose aggregation is claimed once
    with session_scope(sessions) as session:
        assert lifecycle.close_each(session, [ItemClose(third, run_id)]) == {run_id}
    assert [lifecycle.claim_aggregation(sessions, run_id) for _ in range(2)] == [True, False]
