"""Batch mode's submission (docs/architecture.md, D10): each model's questions as batch
files within the provider's limits, uploaded and created by the producer; then one poll
task per batch for the workers. Answers the cache already holds are stored at once."""

from __future__ import annotations

import logging

import together
from celery import Celery
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema import lifecycle
from evalfleet.schema.accounting import spent_usd
from evalfleet.schema.db import session_scope
from evalfleet.schema.errors import ConfigurationError
from evalfleet.schema.models import Batch, Item, ItemState, Run
from evalfleet.schema.payloads import AGGREGATE_RUN_TASK, RunConfig
from evalfleet.schema.settings import Settings
from evalfleet.schema.task_labels import aggregate_run_label
from evalfleet.workers import cache
from evalfleet.workers.batch.budget import fit_budget, refusal
from evalfleet.workers.batch.lines import BatchLine
from evalfleet.workers.batch.messages import send_poll
from evalfleet.workers.batch.requests import open_lines
from evalfleet.workers.batch.store import AnswerRows, close_answered
from evalfleet.workers.batch.submit import Limits, ensure_submitted, record_parts
from evalfleet.workers.errors import Decision, classify, describe, redact

logger = logging.getLogger(__name__)


def submit_run(
    celery: Celery,
    sessions: sessionmaker[Session],
    settings: Settings,
    client: together.Together,
    run_id: int,
) -> int:
    """Record, upload and create the batches of the run's pending items (all of them, or
    those `evalfleet retry` reset), then send their polls; returns the batches. A transient
    API failure leaves a batch `submitting` for its poller to resume; a refused key stops
    the run with one clear message."""
    with sessions() as session:
        config = RunConfig.model_validate(session.get_one(Run, run_id).config)
        # `evalfleet retry` submits again: its rows need keys of their own ("g2p0", ...).
        earlier = session.scalar(
            select(func.count()).where(Batch.run_id == run_id, Batch.round == 1)
        )
    prefix = f"g{earlier}p" if earlier else "p"
    with sessions() as session:
        lines_of = {label: open_lines(session, run_id, label, config) for label in config.models}
    hits = cache.lookup(
        sessions, {ln.cache_key for lines in lines_of.values() for ln in lines if ln.cache_key}
    )
    todo_of = {
        label: [ln for ln in lines if ln.cache_key not in hits] for label, lines in lines_of.items()
    }
    refused, over_budget = within_budget(sessions, run_id, config, todo_of)
    batch_ids: list[int] = []
    known: dict[str, BatchLine] = {}
    for label, lines in lines_of.items():
        todo = [ln for ln in todo_of[label] if ln.story_id not in refused]
        known.update((ln.custom_id, ln) for ln in todo)
        with session_scope(sessions) as session:
            rows = AnswerRows(run_id, label, config.models[label])
            for line in lines:
                if line.cache_key in hits and line.story_id not in refused:
                    rows.add(line, hits[line.cache_key], None, attempt=1, cached=True)
            rows.write(session)
            batch_ids += record_parts(session, run_id, label, todo, Limits.of(settings), 1, prefix)
            pending = (Item.run_id == run_id, Item.model_label == label,
                       Item.state == ItemState.PENDING.value)  # fmt: skip
            if refused:
                lifecycle.close_items(
                    session,
                    and_(*pending, Item.story_id.in_(sorted(refused))),
                    ItemState.FAILED,
                    over_budget,
                )
            item_ids = list(session.scalars(select(Item.id).where(*pending)))
            lifecycle.hold_for_batch(session, item_ids)
            close_answered(session, run_id, item_ids)
    for batch_id in batch_ids:
        try:
            ensure_submitted(sessions, client, batch_id, known)
        except Exception as exc:
            decision, reason = classify(exc), redact(describe(exc), settings)
            if decision is Decision.STOP_RUN:
                with session_scope(sessions) as session:
                    lifecycle.stop_run(session, run_id, f"the API refused the key: {reason}")
                raise ConfigurationError(
                    f"run {run_id}: the API refused the key while submitting a batch: {reason}"
                ) from exc
            logger.warning("run %s batch row %s: submission left to its poller: %s",
                           run_id, batch_id, reason)  # fmt: skip
    for batch_id in batch_ids:
        send_poll(celery, batch_id, countdown=settings.batch_poll_s)
    if not batch_ids and lifecycle.claim_aggregation(sessions, run_id):
        # Every answer came from the cache: no poll will end the run, so this does.
        celery.send_task(AGGREGATE_RUN_TASK, args=[run_id], argsrepr=aggregate_run_label(run_id))
    return len(batch_ids)


def within_budget(
    sessions: sessionmaker[Session],
    run_id: int,
    config: RunConfig,
    todo_of: dict[str, list[BatchLine]],
) -> tuple[frozenset[int], str]:
    """The stories the run's budget leaves out (none without one), and their items' reason:
    a batch is paid once submitted, so its ceiling must fit first (workers/batch/budget.py)."""
    if config.budget_usd is None:
        return frozenset(), ""
    with sessions() as session:
        spent = spent_usd(session, run_id, config)
    fit = fit_budget(todo_of, config.prices, config.budget_usd - spent)
    if fit.refused:
        logger.warning("run %s: %s stories not submitted: over the budget of $%g",
                       run_id, len(fit.refused), config.budget_usd)  # fmt: skip
    return fit.refused, refusal(config.budget_usd, spent, fit)
