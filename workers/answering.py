"""Answer one item (one model over one story): each turn stored as it arrives, none paid twice."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, true, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from evalfleet.schema.accounting import spent_usd
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import (
    OPEN_ITEM_STATES,
    Answer,
    Item,
    ItemState,
    Question,
    Run,
    RunState,
    Story,
    as_utc,
    utcnow,
)
from evalfleet.schema.payloads import HistoryMode, RunConfig
from evalfleet.schema.settings import Settings
from evalfleet.workers import cache
from evalfleet.workers.api import Completion
from evalfleet.workers.errors import Decision, describe
from evalfleet.workers.prompts import build_messages
from evalfleet.workers.requesting import CallCounts, Request, RequestFailed, ask
from evalfleet.workers.resources import Resources

logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """The item met a rate limit or transient failure; the task should retry it later."""

    def __init__(self, decision: Decision, reason: str) -> None:
        super().__init__(reason)
        self.decision = decision
        self.reason = reason


@dataclass(frozen=True)
class Work:
    """What one delivery of an item needs, read from SQL in one go."""

    item_id: int
    run_id: int
    label: str
    model: str
    story_id: int
    story_key: str
    story_text: str
    config: RunConfig
    lease_s: float
    questions: tuple[tuple[int, str, tuple[str, ...]], ...]
    stored: dict[int, str | None]  # turn -> answer text (None: that turn failed for good)


class LeaseKeeper:
    """Renews the item's lease from a background thread while the delivery works (waiting on
    the rate limiter included), so a live holder never loses it and a dead one is noticed
    within one lease."""

    def __init__(self, sessions: sessionmaker[Session], item_id: int, lease_s: float) -> None:
        self.sessions, self.item_id, self.lease_s = sessions, item_id, lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{item_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                with session_scope(self.sessions) as session:
                    session.execute(
                        update(Item)
                        .where(Item.id == self.item_id, Item.state == ItemState.RUNNING.value)
                        .values(lease_until=utcnow() + timedelta(seconds=self.lease_s))
                    )
            except DBAPIError:  # the database is restarting: renew at the next beat
                logger.warning("item %s: lease not renewed (database error)", self.item_id)


@dataclass(frozen=True)
class Delivery:
    """What to do with one delivery of an item message."""

    run_id: int | None
    work: Work | None = None  # None: nothing to do (closed item, stopped run, poison)
    retry_in_s: float | None = None  # another live delivery holds the item: come back later


def start_delivery(
    sessions: sessionmaker[Session], item_id: int, settings: Settings, takeover: bool = False
) -> Delivery:
    """Claim the item atomically (a conditional UPDATE, so SQLite and PostgreSQL agree) and
    count the delivery before any work, then read everything the work needs. `takeover`:
    this is the retry of a delivery that held the item, so its lease is this task's own.
    Three statements, none through the ORM's objects: this runs once per item, on the thread
    that also stores the item's answers, in a process whose API threads want the GIL."""
    now = utcnow()
    with session_scope(sessions) as session:
        found = session.execute(
            select(
                Item.state,
                Item.run_id,
                Item.model_label,
                Item.story_id,
                Run.state.label("run_state"),
                Run.error.label("run_error"),
                Run.config,
                Story.key.label("story_key"),
                Story.text.label("story_text"),
            )
            .join(Run, Run.id == Item.run_id)
            .join(Story, Story.id == Item.story_id)
            .where(Item.id == item_id)
        ).one_or_none()
        if found is None:
            logger.warning("item %s: not in the database, message dropped", item_id)
            return Delivery(None)
        run_id = found.run_id
        if found.state not in OPEN_ITEM_STATES:
            return Delivery(run_id)
        if found.run_state != RunState.RUNNING.value:
            close_item(
                session, item_id, ItemState.FAILED, f"run {run_id} stopped: {found.run_error}"
            )
            return Delivery(run_id)
        lease_over = or_(Item.lease_until.is_(None), Item.lease_until < now)
        claimed = session.execute(
            update(Item)
            .where(
                Item.id == item_id,
                or_(
                    Item.state == ItemState.PENDING.value,
                    and_(
                        Item.state == ItemState.RUNNING.value,
                        true() if takeover else lease_over,
                    ),
                ),
            )
            .values(
                state=ItemState.RUNNING.value,
                attempts=Item.attempts + 1,
                lease_until=now + timedelta(seconds=settings.lease_s),
                started_at=func.coalesce(Item.started_at, now),
            )
            .returning(Item.attempts, Item.last_error)
            .execution_options(synchronize_session=False)  # no Item object is loaded here
        ).one_or_none()
        if claimed is None:
            return held_elsewhere(session, item_id, run_id, now)
        if claimed.attempts > settings.max_attempts:
            # A task that kills its worker every time (task_reject_on_worker_lost redelivers
            # it) ends here instead of looping forever.
            last = claimed.last_error or "the worker was lost each time"
            reason = f"gave up after {settings.max_attempts} deliveries: {last}"
            logger.error("run %s item %s: %s", run_id, item_id, reason)
            close_item(session, item_id, ItemState.FAILED, reason)
            return Delivery(run_id)
        config = RunConfig.model_validate(found.config)
        if config.budget_usd is not None:
            spent = spent_usd(session, run_id, config.models, config.prices)
            if spent >= config.budget_usd:
                reason = f"budget of ${config.budget_usd:g} spent (${spent:.4f}): not started"
                close_item(session, item_id, ItemState.FAILED, reason)
                return Delivery(run_id)
        # Every question of the story with the answer this model already has, if any.
        turns = session.execute(
            select(
                Question.turn,
                Question.text,
                Question.references,
                Answer.turn.label("stored"),
                Answer.text.label("answer"),
            )
            .outerjoin(
                Answer,
                and_(
                    Answer.run_id == run_id,
                    Answer.model_label == found.model_label,
                    Answer.story_id == Question.story_id,
                    Answer.turn == Question.turn,
                ),
            )
            .where(Question.story_id == found.story_id)
            .order_by(Question.turn)
        ).all()
        return Delivery(
            run_id,
            Work(
                item_id=item_id,
                run_id=run_id,
                label=found.model_label,
                model=config.models[found.model_label],
                story_id=found.story_id,
                story_key=found.story_key,
                story_text=found.story_text,
                config=config,
                lease_s=settings.lease_s,
                questions=tuple((t.turn, t.text, tuple(t.references)) for t in turns),
                stored={t.turn: t.answer for t in turns if t.stored is not None},
            ),
        )


def held_elsewhere(session: Session, item_id: int, run_id: int, now: datetime) -> Delivery:
    """The claim found the item closed meanwhile, or held by a live delivery: then come back
    once its lease is over."""
    state, lease_until = session.execute(
        select(Item.state, Item.lease_until).where(Item.id == item_id)
    ).one()
    if state not in OPEN_ITEM_STATES:
        return Delivery(run_id)
    lease_end = as_utc(lease_until) if lease_until else now
    return Delivery(run_id, retry_in_s=max(1.0, (lease_end - now).total_seconds() + 1))


def close_item(session: Session, item_id: int, state: ItemState, error: str | None) -> None:
    close_items(session, Item.id == item_id, state, error)


def close_items(
    session: Session,
    which: ColumnElement[bool],
    state: ItemState,
    error: str | None,
    counts: CallCounts | None = None,
) -> None:
    """End the open items `which` selects (the closed ones keep their outcome), adding
    `counts` to their API calls."""
    session.execute(
        update(Item)
        .where(which, Item.state.in_(OPEN_ITEM_STATES))
        .values(
            state=state.value,
            last_error=error,
            finished_at=utcnow(),
            lease_until=None,
            **(call_counts(counts) if counts is not None else {}),
        )
        .execution_options(synchronize_session=False)  # no Item object is loaded here
    )


@dataclass(frozen=True)
class TurnOutcome:
    turn: int
    completion: Completion | None
    failure: RequestFailed | None = None
    cached: bool = False  # served from the response cache
    cache_key: str | None = None  # keep the response under this key with the answer


def answer_turns(work: Work, resources: Resources, attempt: int) -> None:
    """Ask every turn not yet stored; store each answer (or its final error) as it arrives.
    Independent turns (every mode but `model`) go out concurrently on the process's pool."""
    counts = CallCounts()
    todo = [turn for turn, _, _ in work.questions if turn not in work.stored]
    # The calls are counted whatever came of them: with the item's close when it is done,
    # on their own otherwise.
    try:
        with LeaseKeeper(resources.sessions, work.item_id, work.lease_s):
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
        reason = redact(describe(failure.cause), resources)
        if failure.decision is Decision.STOP_RUN:
            stop_run(resources.sessions, work.run_id, f"the API refused the key: {reason}")
            return
        if failure.decision is Decision.FAIL_MODEL:
            fail_model(resources.sessions, work, f"model not found: {work.model}: {reason}")
            return
    # 429 or transient after every attempt: the task retries later
    first = failures[0]
    raise RetryLater(first.decision, redact(describe(first.cause), resources))


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


def turn_request(work: Work, turn: int, own_answers: dict[int, str]) -> Request:
    config = work.config
    return Request(
        model=work.model,
        messages=build_messages(work.story_text, work.questions, turn, config.history, own_answers),
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        seed=config.seed,
    )


def turn_cache_key(work: Work, request: Request) -> str | None:
    """The request's key in the response cache; None when the run does not use the cache."""
    config = work.config
    if not config.cache:
        return None
    return cache.cache_key(
        config.base_url, request.model, request.messages, config.generation_params()
    )


def ask_turn(
    work: Work,
    resources: Resources,
    turn: int,
    request: Request,
    cache_key: str | None,
    counts: CallCounts,
) -> TurnOutcome:
    """One turn's request (on an API thread, with that thread's client); nothing stored."""
    config = work.config
    try:
        completion = ask(
            request,
            resources.client(config.base_url),
            resources.settings.request_attempts,
            resources.limiter(config.base_url, work.model, config.rpm, config.tpm),
            counts,
            in_flight=resources.in_flight,
        )
    except RequestFailed as failure:
        return TurnOutcome(turn, None, failure)
    return TurnOutcome(turn, completion, cache_key=cache_key)


def record_calls(sessions: sessionmaker[Session], item_id: int, counts: CallCounts) -> None:
    if counts.calls:
        with session_scope(sessions) as session:
            session.execute(update(Item).where(Item.id == item_id).values(**call_counts(counts)))


def call_counts(counts: CallCounts) -> dict[str, Any]:
    """The item's columns that add up its API calls, as UPDATE values."""
    return {
        "api_calls": Item.api_calls + counts.calls,
        "rate_limited": Item.rate_limited + counts.rate_limited,
    }


def store_outcomes(
    resources: Resources, work: Work, outcomes: list[TurnOutcome], attempt: int, urgent: bool
) -> None:
    """The answers, the final errors of turns that failed for good (a 400), and the fresh
    responses in the cache, committed together (with other items' rows: group_commit; at
    once when `urgent`, without waiting for company). Retryable failures store nothing."""
    answers, responses = [], []
    for outcome in outcomes:
        completion, failure = outcome.completion, outcome.failure
        error = None
        if failure is not None:
            if failure.decision is not Decision.FAIL_TURN:
                continue
            error = redact(describe(failure.cause), resources)
            logger.warning(
                "run %s model %s story %s turn %s: %s",
                work.run_id, work.label, work.story_id, outcome.turn, error,
            )  # fmt: skip
        answers.append(answer_row(work, outcome.turn, completion, attempt, error, outcome.cached))
        if completion is not None and outcome.cache_key is not None:
            responses.append(cache.cache_row(outcome.cache_key, work.model, completion))
    if answers:
        resources.writer.write(answers, responses, urgent)


def answer_row(
    work: Work,
    turn: int,
    completion: Completion | None,
    attempt: int,
    error: str | None,
    cached: bool,
) -> dict[str, object]:
    return {
        "run_id": work.run_id,
        "model_label": work.label,
        "story_id": work.story_id,
        "turn": turn,
        "text": completion.text if completion else None,
        "finish_reason": completion.finish_reason if completion else None,
        "prompt_tokens": completion.prompt_tokens if completion else None,
        "completion_tokens": completion.completion_tokens if completion else None,
        "latency_ms": completion.latency_ms if completion else None,
        "attempts": attempt,
        "cached": cached,
        "error": error,
        "created_at": utcnow(),
    }


def finish_item(
    sessions: sessionmaker[Session],
    item_id: int,
    state: ItemState,
    error: str | None,
    counts: CallCounts | None = None,
) -> None:
    with session_scope(sessions) as session:
        close_items(session, Item.id == item_id, state, error, counts)


def record_retry(sessions: sessionmaker[Session], item_id: int, reason: str) -> None:
    """Hand the item back as pending, keeping why, until its retry arrives."""
    with session_scope(sessions) as session:
        session.execute(
            update(Item)
            .where(Item.id == item_id, Item.state.in_(OPEN_ITEM_STATES))
            .values(state=ItemState.PENDING.value, last_error=reason, lease_until=None)
        )


def stop_run(sessions: sessionmaker[Session], run_id: int, reason: str) -> None:
    """A configuration error: stop the whole run once, with one clear message."""
    logger.error("run %s: stopped: %s", run_id, reason)
    with session_scope(sessions) as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == RunState.RUNNING.value)
            .values(state=RunState.FAILED.value, error=reason, finished_at=utcnow())
        )
        close_items(session, Item.run_id == run_id, ItemState.FAILED, reason)


def fail_model(sessions: sessionmaker[Session], work: Work, reason: str) -> None:
    """An unknown model: fail all of its open items at once; the other models go on."""
    logger.error("run %s model %s: %s", work.run_id, work.label, reason)
    with session_scope(sessions) as session:
        which = and_(Item.run_id == work.run_id, Item.model_label == work.label)
        close_items(session, which, ItemState.FAILED, reason)


def redact(text: str, resources: Resources) -> str:
    """Belt and braces: the API key never reaches the database or a log line."""
    key = resources.settings.together_api_key
    secret = key.get_secret_value() if key else ""
    return text.replace(secret, "[redacted]") if len(secret) >= 8 else text
