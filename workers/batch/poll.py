"""One poll of one batch (docs/architecture.md, D10): submit it if that was left undone,
ask the provider how it is going, and once it has ended store its outcomes once: answers
and 400s as answer rows, 429s and transient failures into a retry batch (or, after the last
round, the item failed with the reason), 401/403 stop the run, 404 fails the model."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import together
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema import lifecycle
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import Batch, BatchState, Item, ItemState, Run, RunState, utcnow
from evalfleet.schema.payloads import RunConfig
from evalfleet.schema.settings import Settings
from evalfleet.workers import metrics
from evalfleet.workers.batch.lines import BatchLine
from evalfleet.workers.batch.requests import open_lines
from evalfleet.workers.batch.results import LineFailure, LineOutcome, read_outcomes
from evalfleet.workers.batch.store import AnswerRows, close_answered
from evalfleet.workers.batch.submit import Limits, ensure_submitted, record_parts
from evalfleet.workers.errors import Decision, classify, describe, redact
from evalfleet.workers.resources import Resources

logger = logging.getLogger(__name__)
TERMINAL = ("COMPLETED", "FAILED", "EXPIRED", "CANCELLED")


@dataclass(frozen=True)
class Polled:
    run_id: int | None
    again_in_s: float | None = None  # poll again after this long
    new_batches: list[int] = field(default_factory=list)  # retry batches to poll


@dataclass(frozen=True)
class Snapshot:
    batch_id: int
    run_id: int
    label: str
    key: str
    round: int
    custom_ids: list[str]
    config: RunConfig


def poll_lease_s(settings: Settings) -> float:
    """A poller renews its hold every poll; three missed polls and the sweep re-sends."""
    return 3 * settings.batch_poll_s + 5


def poll_once(resources: Resources, batch_id: int, token: str) -> Polled:
    sessions, settings = resources.sessions, resources.settings
    with session_scope(sessions) as session:
        row = session.get(Batch, batch_id)
        if row is None:
            return Polled(None)
        run = session.get_one(Run, row.run_id)
        if not lifecycle.take_poll(session, batch_id, token, poll_lease_s(settings), utcnow()):
            return Polled(row.run_id)  # closed, or another live chain polls it
        snap = Snapshot(
            batch_id, row.run_id, row.model_label, row.key, row.round, list(row.custom_ids),
            RunConfig.model_validate(run.config),
        )  # fmt: skip
        provider_id, run_state, run_error = row.provider_id, run.state, run.error
        if run_state != RunState.RUNNING.value:
            reason = f"run {row.run_id} stopped: {run_error}"
            lifecycle.finish_batch(session, batch_id, BatchState.FAILED, None, 0, 0, reason)
            return Polled(row.run_id)
    client = resources.client(snap.config.base_url)
    try:
        if provider_id is None:
            if not ensure_submitted(sessions, client, batch_id):
                return Polled(snap.run_id)
            with sessions() as session:
                provider_id = session.get_one(Batch, batch_id).provider_id
        assert provider_id is not None
        job = client.batches.retrieve(provider_id)
        if job.status not in TERMINAL:
            with session_scope(sessions) as session:
                lifecycle.note_progress(session, batch_id, job.status, float(job.progress or 0))
            return Polled(snap.run_id, again_in_s=settings.batch_poll_s)
        output = client.files.content(job.output_file_id).read() if job.output_file_id else b""
        errors = client.files.content(job.error_file_id).read() if job.error_file_id else b""
    except together.NotFoundError as exc:
        # The provider lost the batch or its files: its questions go into a retry batch.
        lost = f"lost: {redact(describe(exc), settings)}"
        return Polled(snap.run_id, new_batches=store_batch(sessions, settings, snap, "-", lost, {}))
    except Exception as exc:  # noqa: BLE001 - classified as the synchronous path does
        return api_failed(sessions, settings, snap, exc)
    model = snap.config.models[snap.label]
    outcomes = read_outcomes(output, errors, model)
    ended = f"{job.status}: {job.error}" if job.error else str(job.status)
    new = store_batch(sessions, settings, snap, provider_id, ended, outcomes)
    return Polled(snap.run_id, new_batches=new)


def api_failed(
    sessions: sessionmaker[Session], settings: Settings, snap: Snapshot, exc: Exception
) -> Polled:
    decision, reason = classify(exc), redact(describe(exc), settings)
    logger.warning("run %s batch row %s: %s (%s)", snap.run_id, snap.batch_id, reason, decision)
    if decision in (Decision.RATE_LIMITED, Decision.TRANSIENT):
        return Polled(snap.run_id, again_in_s=settings.batch_poll_s)
    with session_scope(sessions) as session:
        lifecycle.finish_batch(session, snap.batch_id, BatchState.FAILED, None, 0, 0, reason)
        if decision is Decision.STOP_RUN:
            lifecycle.stop_run(session, snap.run_id, f"the API refused the key: {reason}")
        else:
            # The provider refused the file or the batch (a 404 here means no batch API, not
            # an unknown model: a line's own 404 says that): its questions cannot be asked.
            items = {line.item_id for line in _lines(session, snap)}
            lifecycle.close_items(
                session, Item.id.in_(items), ItemState.FAILED, f"batch refused: {reason}"
            )
    return Polled(snap.run_id)


def store_batch(
    sessions: sessionmaker[Session],
    settings: Settings,
    snap: Snapshot,
    provider_id: str,
    ended: str,
    outcomes: dict[str, LineOutcome],
) -> list[int]:
    """Every outcome of the batch in one transaction, made by the one poller whose
    `finish_batch` changed the row (D2, D10); returns the retry batches recorded."""
    model = snap.config.models[snap.label]
    last_round = snap.round > settings.task_max_retries
    with session_scope(sessions) as session:
        lines = _lines(session, snap)
        rows = AnswerRows(snap.run_id, snap.label, model)
        retry: list[BatchLine] = []
        exhausted: dict[int, str] = {}
        final: dict[Decision, str] = {}
        for line in lines:
            outcome = outcomes.get(line.custom_id)
            if outcome is not None and outcome.completion is not None:
                rows.add(line, outcome.completion, None, snap.round)
                continue
            failure = (
                outcome.failure
                if outcome is not None and outcome.failure is not None
                else LineFailure(Decision.TRANSIENT, f"no line in batch {provider_id} ({ended})")
            )
            if failure.decision is Decision.FAIL_TURN:
                rows.add(line, None, redact(failure.reason, settings), snap.round)
            elif failure.decision in (Decision.STOP_RUN, Decision.FAIL_MODEL):
                final.setdefault(failure.decision, redact(failure.reason, settings))
            elif last_round:
                exhausted[line.item_id] = redact(failure.reason, settings)
            else:
                retry.append(line)
        answered = sum(1 for r in rows.answers if r["error"] is None)
        if not lifecycle.finish_batch(
            session, snap.batch_id, BatchState.DONE, ended, answered, len(lines) - answered, None
        ):
            return []  # another poller stored it: its transaction holds the same outcomes
        created = rows.write(session)
        if Decision.STOP_RUN in final:
            lifecycle.stop_run(
                session, snap.run_id, f"the API refused the key: {final[Decision.STOP_RUN]}"
            )
            return []
        if Decision.FAIL_MODEL in final:
            reason = f"model not found: {model}: {final[Decision.FAIL_MODEL]}"
            lifecycle.fail_model(session, snap.run_id, snap.label, reason)
        for item_id, reason in exhausted.items():
            lifecycle.close_items(
                session, Item.id == item_id, ItemState.FAILED,
                f"failed after {snap.round} batches: {reason}",
            )  # fmt: skip
        new = record_parts(
            session, snap.run_id, snap.label, retry, Limits.of(settings), snap.round + 1,
            f"{snap.key}r",
        )  # fmt: skip
        close_answered(session, snap.run_id, [line.item_id for line in lines])
    metrics.count_answers(created)  # committed: as the group commit counts (workers/metrics.py)
    logger.info(
        "run %s model %s batch %s: %s answered, %s to retry, %s items failed",
        snap.run_id, snap.label, provider_id, answered, len(retry), len(exhausted),
    )  # fmt: skip
    return new


def _lines(session: Session, snap: Snapshot) -> list[BatchLine]:
    return open_lines(
        session, snap.run_id, snap.label, snap.config, only=snap.custom_ids, closed_too=True
    )
