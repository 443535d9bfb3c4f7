"""Answer one item (one model over one story): each turn stored as it arrives, none paid
twice; the item closed with its last answers when every turn succeeded (with a judge: with
its last judgements, once every answer is graded); otherwise stop the run, fail the model,
or hand the item back, by how its requests failed (workers/retry_policy.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema import lifecycle
from evalfleet.schema.db import session_scope
from evalfleet.schema.lifecycle import ItemClose
from evalfleet.schema.models import Item, ItemState
from evalfleet.schema.payloads import HistoryMode
from evalfleet.workers import cache, metrics
from evalfleet.workers.arrivals import store_as_they_arrive
from evalfleet.workers.delivery import Work
from evalfleet.workers.errors import Decision, describe, redact
from evalfleet.workers.judging import grade_item
from evalfleet.workers.requesting import CallCounts, RequestFailed
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


@dataclass
class ItemEnd:
    """The delivery's API calls; whether the item was closed with its last answers, and if
    that close may have been its run's last (lifecycle.close_each; when it was not closed
    there, the caller claims)."""

    counts: CallCounts = field(default_factory=CallCounts)
    closed: bool = False
    may_be_last: bool = True


def answer_turns(work: Work, resources: Resources, attempt: int) -> bool:
    """Ask every turn not yet stored; store each answer (or its final error) as it arrives.
    Independent turns (every mode but `model`) go out concurrently on the process's pool.
    With a judge, once every turn has its answer, grade those not yet graded. False when
    the item closed knowing another item of its run is still open: then the caller need not
    claim the aggregation (docs/architecture.md, D3)."""
    todo = [turn for turn, _, _ in work.questions if turn not in work.stored]
    end = ItemEnd()
    counts = end.counts
    judge: str | None = None
    # The calls are counted whatever came of them: with the item's close when it is done,
    # on their own otherwise.
    try:
        with (
            metrics.ITEMS_IN_FLIGHT.track_inprogress(),
            resources.leases.hold(work.item_id),
        ):
            if work.config.history is HistoryMode.MODEL:
                outcomes = answer_in_order(work, resources, attempt, todo, end)
            else:
                outcomes = answer_concurrently(work, resources, attempt, todo, end)
            failures = [o.failure for o in outcomes if o.failure is not None]
            if not failures and work.config.judge is not None:
                judge = work.config.judge.model  # the failures below are the judge's
                failures = judge_and_close(work, resources, outcomes, end)
        if not failures:
            if not end.closed:  # nothing was left to store (every turn stored before)
                finish_item(resources.sessions, work.item_id, ItemState.DONE, None, counts)
            return end.may_be_last
    except BaseException:
        if not end.closed:
            record_calls(resources.sessions, work.item_id, counts)
        raise
    record_calls(resources.sessions, work.item_id, counts)
    for failure in failures:
        reason = redact(describe(failure.cause), resources.settings)
        if failure.decision is Decision.STOP_RUN:
            whose = f" for the judge {judge}" if judge else ""
            stop_run(resources.sessions, work.run_id, f"the API refused the key{whose}: {reason}")
            return True
        if failure.decision is Decision.FAIL_MODEL:
            if judge is not None:  # without its judge no item of the run can close
                why = f"judge model not found: {judge}: {reason}"
                stop_run(resources.sessions, work.run_id, why)
            else:
                fail_model(resources.sessions, work, f"model not found: {work.model}: {reason}")
            return True
    # 429 or transient after every attempt: the task retries later
    first = failures[0]
    whose = f"judge {judge}: " if judge else ""
    raise RetryLater(first.decision, whose + redact(describe(first.cause), resources.settings))


def store_last(
    resources: Resources,
    work: Work,
    earlier: list[TurnOutcome],
    last: list[TurnOutcome],
    attempt: int,
    end: ItemEnd,
) -> None:
    """The item's last outcomes, with its close when no turn failed: the item ends in the
    transaction of its last answers, counting its calls (all of them are in by now). With a
    judge it closes later, with its last judgements (judge_and_close)."""
    failed = any(o.failure is not None for o in (*earlier, *last))
    if failed or work.config.judge is not None:
        store_outcomes(resources, work, last, attempt, urgent=True)
        return
    close = ItemClose(work.item_id, work.run_id, end.counts.calls, end.counts.rate_limited)
    end.may_be_last = store_outcomes(resources, work, last, attempt, True, close)
    end.closed = True


def judge_and_close(
    work: Work, resources: Resources, outcomes: list[TurnOutcome], end: ItemEnd
) -> list[RequestFailed]:
    """Grade the item's answers not yet graded, each judgement stored as it arrives
    (workers/judging.py); when every answer has one, the write of the last ones closes the
    item, so that the run's aggregation (counted in SQL, D3) waits for every judgement. The
    failed requests that stored nothing come back for the caller: the item is handed back,
    or the run stopped."""
    answers = {**work.stored, **{o.turn: o.completion.text for o in outcomes if o.completion}}
    graded = grade_item(work, resources, answers, end.counts)
    if graded.closed:
        end.may_be_last, end.closed = graded.may_be_last, True
    return graded.failures


def answer_concurrently(
    work: Work, resources: Resources, attempt: int, todo: list[int], end: ItemEnd
) -> list[TurnOutcome]:
    """Cached turns at once; the others on the process's API pool, each answer stored as it
    arrives (workers/arrivals.py); the last ones at once, with the item's close: the item's
    end, and the run's, wait on them."""
    requests = {turn: turn_request(work, turn, {}) for turn in todo}
    keys = {turn: turn_cache_key(work, request) for turn, request in requests.items()}
    hits = cache.lookup(resources.sessions, {k for k in keys.values() if k is not None})
    ready = [TurnOutcome(t, hits[k], cached=True) for t, k in keys.items() if k in hits]
    pool = resources.executor(work.config.base_url, work.model)
    pending = {
        pool.submit(ask_turn, work, resources, turn, request, keys[turn], end.counts)
        for turn, request in requests.items()
        if keys[turn] not in hits
    }

    def store(
        earlier: list[TurnOutcome], batch: list[TurnOutcome], urgent: bool, last: bool
    ) -> None:
        if last:
            store_last(resources, work, earlier, batch, attempt, end)
        else:
            store_outcomes(resources, work, batch, attempt, urgent)

    return store_as_they_arrive(ready, pending, end.counts, store)


def answer_in_order(
    work: Work, resources: Resources, attempt: int, todo: list[int], end: ItemEnd
) -> list[TurnOutcome]:
    """`model` history: each turn needs the model's earlier answers, so one at a time."""
    counts = end.counts
    own = {turn: text for turn, text in work.stored.items() if text}
    outcomes: list[TurnOutcome] = []
    for turn in todo:
        request = turn_request(work, turn, own)
        key = turn_cache_key(work, request)
        hit = cache.lookup(resources.sessions, [key]).get(key) if key is not None else None
        if hit is not None:
            outcome = TurnOutcome(turn, hit, cached=True)
        else:
            outcome = ask_turn(work, resources, turn, request, key, counts)
        if turn == todo[-1]:
            store_last(resources, work, outcomes, [outcome], attempt, end)
        else:
            store_outcomes(resources, work, [outcome], attempt, urgent=True)  # the next turn waits
        outcomes.append(outcome)
        if outcome.completion is not None:
            own[turn] = outcome.completion.text
        elif outcome.failure is not None and outcome.failure.decision is not Decision.FAIL_TURN:
            break  # later turns would be asked with a hole in their history
    return outcomes


# --- the item's other transitions, each in a transaction of its own (schema/lifecycle.py) ---


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
