"""`evalfleet status`'s batch progress (batch mode, docs/architecture.md, D10): batches
submitted and completed, requests answered, per model; as lines or, for `--json`, as one
object per model with the same figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.cli.options import stdout
from evalfleet.schema.models import Batch, BatchState


@dataclass
class BatchTally:
    batches: int = 0
    submitted: int = 0  # the provider has them (open or ended)
    completed: int = 0
    failed: int = 0
    requests: int = 0  # lines of the first round: one per question asked
    answered: int = 0
    retried: int = 0  # lines sent again in a later round


def batch_tallies(session: Session, run_id: int) -> dict[str, BatchTally]:
    """The figures per model of a batch-mode run; none for a synchronous run."""
    tallies: dict[str, BatchTally] = {}
    rows = session.execute(
        select(
            Batch.model_label, Batch.round, Batch.state, Batch.provider_id, Batch.custom_ids,
            Batch.answered,
        ).where(Batch.run_id == run_id).order_by(Batch.id)
    )  # fmt: skip
    for label, round_, state, provider_id, custom_ids, answered in rows:
        tally = tallies.setdefault(label, BatchTally())
        tally.batches += 1
        tally.submitted += provider_id is not None
        tally.completed += state == BatchState.DONE.value
        tally.failed += state == BatchState.FAILED.value
        tally.answered += answered
        if round_ == 1:
            tally.requests += len(custom_ids)
        else:
            tally.retried += len(custom_ids)
    return tallies


def batch_json(session: Session, run_id: int) -> dict[str, dict[str, Any]]:
    """`status --json`'s "batches": per model, the figures `batch_lines` shows."""
    return {label: asdict(t) for label, t in batch_tallies(session, run_id).items()}


def batch_lines(session: Session, run_id: int) -> list[str]:
    """One line per model of a batch-mode run; none for a synchronous run."""
    return [
        f"{label} batches: {t.submitted} of {t.batches} submitted, {t.completed} completed"
        + (f", {t.failed} failed" if t.failed else "")
        + f"; requests: {t.answered} of {t.requests} answered"
        + (f" ({t.retried} sent again)" if t.retried else "")
        for label, t in batch_tallies(session, run_id).items()
    ]


def print_batch_progress(sessions: sessionmaker[Session], run_id: int) -> None:
    with sessions() as session:
        for line in batch_lines(session, run_id):
            stdout.print(line, markup=False, highlight=False)
