"""Answer one item (one model over one story): each turn stored as it arrives, none paid
twice; then close the item, or stop the run, fail the model, or hand the item back, by how
its requests failed (workers/retry_policy.py)."""

from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, wait

from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema import lifecycle
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import Item, ItemState
from evalfleet.schema.payloads import HistoryMode
from evalfleet.workers import cache, metrics
from evalfleet.workers.delivery import Work
from evalfleet.workers.errors import Decision, describe, redact
from evalfleet.workers.lease import LeaseKeeper
from evalfleet.workers.requesting import CallCounts
from evalfleet.workers.resources import Resources
from evalfleet.workers.storing import store_outcomes
from evalfleet.workers.turns import TurnOutcome, ask_turn, turn_cache_key, turn_request

logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """The item met a rate limit or transient failure; the task should retry it later."""

    def __init__(self, decision: Decision, reason: str) -> None:
        super().__init__(reason)
        self.decision = decision
        self.reason = reason


def answer_turns(work: Work, resources: Resources, attempt: int) -> None:
    """Ask every turn not yet stored; store each answer (or its final error) as it arrives.
    Independent turns (every mode but `model`) go out concurrently on the process's pool."""
    counts = CallCounts()
    todo = [turn for turn, _, _ in work.questions if turn not in work.stored]
    # The calls are counted whatever came of them: with the item's close when it is done,
    # on their own otherwise.
    try:
        with (
            metrics.ITEMS_IN_FLIGHT.track_inprogress(),
            LeaseKeeper(resources.sessions, work.item_id, work.lease_s),
        ):
            if work.config.history is HistoryMode.MODEL:
                outcomes = answer_in_order(work, resources, attempt, todo, counts)
            else:
                outcomes = answer_concurrently(work, resources, attempt, todo, counts)
        failures = [o.failure for o in outcomes if o.failure is not None]
        if not failures:
            finish_item(resources.sessions, work.item_id, ItemState.DONE, None, counts)
            return
    except BaseException:
        record_calls(resources.sessions, work.item_id, counts)
        raise
    record_calls(resources.sessions, work.item_id, counts)
    for failure in failures:
        reason = redact(describe(failure.cause), resources.settings)
        if failure.decision is Decision.STOP_RUN:
            stop_run(resources.sessions, work.run_id, f"the API refused the key: {reason}")
            return
        if failure.decision is Decision.FAIL_MODEL:
            fail_model(resources.sessions, work, f"model not found: {work.model}: {reason}")
            return
    # 429 or transient after every attempt: the task retries later
    first = failures[0]
    raise RetryLater(first.decision, redact(describe(first.cause), resources.settings))


def answer_concurrently(
    work: Work, resources: Resources, attempt: int, todo: list[int], counts: CallCounts
) -> list[TurnOutcome]:
    """Cached turns at once; the others on the process's API pool. This thread stores the
    answers as they arrive, together when several arrived meanwhile: the API threads only
    talk HTTP, so they never queue for a database connection. If a store or a request raises
    (the database went away), the other turns stop before their next request, and the error
    is raised once all have ended."""
    requests = {turn: turn_request(work, turn, {}) for turn in todo}
    keys = {turn: turn_cache_key(work, request) for turn, request in requests.items()}
    hits = cache.lookup(resources.sessions, {k for k in keys.values() if k is not None})
    ready = [TurnOutcome(t, hits[k], cached=True) for t, k in keys.items() if k in hits]
    pool = resources.executor(work.config.base_url, work.model)
    pending = {
        pool.submit(ask_turn, work, resources, turn, request, keys[turn], counts)
        for turn, request in requests.items()
        if keys[turn] not in hits
    }
    outcomes: list[TurnOutcome] = []
    error: BaseException | None = None
    while True:
        try:
            # The last answers are written at once: the item's end, and the run's, wait on them.
            store_outcomes(resources, work, ready, attempt, urgent=not pending)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others end
            counts.cancel()
            error = error or exc
        outcomes.extend(ready)
        if not pending:
            break
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        ready = []
        for future in done:
            try:
                ready.append(future.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                counts.cancel()
                error = error or exc
    if error is not None:
        raise error
    return outcomes


def answer_in_order(
    work: Work, resources: Resources, attempt: int, todo: list[int], counts: CallCounts
) -> list[TurnOutcome]:
    """`model` history: each turn needs the model's earlier answers, so one at a time."""
    own = {turn: text for turn, text in work.stored.items() if text}
    outcomes = []
    for turn in todo:
        request = turn_request(work, turn, own)
        key = turn_cache_key(work, request)
        hit = cache.lookup(resources.sessions, [key]).get(key) if key is not None else None
        if hit is not None:
            outcome = TurnOutcome(turn, hit, cached=True)
        else:
            outcome = ask_turn(work, resources, turn, request, key, counts)
        store_outcomes(resources, work, [outcome], attempt, urgent=True)  # the next turn waits
        outcomes.append(outcome)
        if outcome.completion is not None:
            own[turn] = outcome.completion.text
        elif outcome.failure is not None and outcome.failure.decision is not Decision.FAIL_TURN:
            break  # later turns would be asked with a hole in their history
    return outcomes


# --- the item's transitions, each in a transaction of its own (schema/lifecycle.py) ---------


def record_calls(sessions: sessionmaker[Session], item_id: int, counts: CallCounts) -> None:
    if counts.calls:
        with session_scope(sessions) as session:
            lifecycle.record_calls(session, item_id, counts.calls, counts.rate_limited)


def finish_item(
    sessions: sessionmaker[Session],
    item_id: int,
    state: ItemState,
    error: str | None,
    counts: CallCounts | None = None,
) -> None:
    calls, limited = (counts.calls, counts.rate_limited) if counts is not None else (0, 0)
    with session_scope(sessions) as session:
        lifecycle.close_items(session, Item.id == item_id, state, error, calls, limited)


def hand_back(sessions: sessionmaker[Session], item_id: int, reason: str) -> None:
    """Pending again, keeping why, until the task's retry arrives."""
    with session_scope(sessions) as session:
        lifecycle.hand_back(session, item_id, reason)


def stop_run(sessions: sessionmaker[Session], run_id: int, reason: str) -> None:
    """A configuration error: stop the whole run once, with one clear message."""
    logger.error("run %s: stopped: %s", run_id, reason)
    with session_scope(sessions) as session:
        lifecycle.stop_run(session, run_id, reason)


def fail_model(sessions: sessionmaker[Session], work: Work, reason: str) -> None:
    """An unknown model: fail all of its open items at once; the other models go on."""
    logger.error("run %s model %s: %s", work.run_id, work.label, reason)
    with session_scope(sessions) as session:
        lifecycle.fail_model(session, work.run_id, work.label, reason)
