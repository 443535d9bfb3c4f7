"""Submitting batches idempotently (docs/architecture.md, D10).

The batch row is committed before the upload (`record_batch`, unique per run, model and
key), the uploaded file's id right after it (`note_input_file`), the provider's batch id
right after the create (`mark_submitted`). Whoever resumes a row in `submitting` (the
producer, or a poller the sweep sent) continues from what was recorded: no file yet,
upload one (an orphaned earlier upload costs nothing); a file but no batch, first look for a
provider batch made from that file (the create may have succeeded before a kill) and adopt
it, so a batch is never created twice for one row."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import together
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema import lifecycle
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import Batch, BatchState, Run
from evalfleet.schema.payloads import RunConfig
from evalfleet.schema.settings import Settings
from evalfleet.workers.batch.lines import BatchLine, file_content, split_lines
from evalfleet.workers.batch.requests import open_lines

logger = logging.getLogger(__name__)
ENDPOINT: Final[Literal["/v1/chat/completions"]] = "/v1/chat/completions"


@dataclass(frozen=True)
class Limits:
    """The provider's limits per batch file (Together: 50,000 requests, 100 MB)."""

    max_requests: int
    max_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.batch_max_requests, settings.batch_max_bytes)


def record_parts(
    session: Session,
    run_id: int,
    label: str,
    lines: list[BatchLine],
    limits: Limits,
    round_: int,
    key_prefix: str,
) -> list[int]:
    """One `submitting` row per part of `lines` within the limits; their ids."""
    parts = split_lines(lines, limits.max_requests, limits.max_bytes)
    return [
        lifecycle.record_batch(
            session, run_id, label, f"{key_prefix}{i}", round_, [ln.custom_id for ln in part]
        )
        for i, part in enumerate(parts)
    ]


def ensure_submitted(
    sessions: sessionmaker[Session],
    client: together.Together,
    batch_id: int,
    known: dict[str, BatchLine] | None = None,
) -> bool:
    """Bring a batch row to `submitted`; false when it has nothing left to ask (closed
    `done` at once). API errors are raised for the caller to classify."""
    with sessions() as session:
        row = session.get_one(Batch, batch_id)
        if row.state != BatchState.SUBMITTING.value:
            return row.state == BatchState.SUBMITTED.value
        file_id, custom_ids = row.input_file_id, list(row.custom_ids)
        run_id, label = row.run_id, row.model_label
        config = RunConfig.model_validate(session.get_one(Run, run_id).config)
        lines = (
            [known[c] for c in custom_ids if c in known]
            if known is not None
            else open_lines(session, run_id, label, config, only=custom_ids)
        )
    if file_id is None:
        if not lines:  # answered meanwhile (another row, the cache): nothing to submit
            with session_scope(sessions) as session:
                lifecycle.finish_batch(session, batch_id, BatchState.DONE, None, 0, 0, None)
            return False
        file_id = upload(client, batch_id, lines)
        with session_scope(sessions) as session:
            lifecycle.note_input_file(session, batch_id, file_id)
    else:
        adopted = next(
            (job for job in client.batches.list() if job.input_file_id == file_id and job.id),
            None,
        )
        if adopted is not None and adopted.id is not None:
            logger.info("batch row %s: adopting provider batch %s", batch_id, adopted.id)
            with session_scope(sessions) as session:
                lifecycle.mark_submitted(session, batch_id, adopted.id, adopted.status)
            return True
    created = client.batches.create(endpoint=ENDPOINT, input_file_id=file_id)
    job = created.job
    if job is None or not job.id:
        raise RuntimeError(f"batch row {batch_id}: the provider's answer names no batch")
    with session_scope(sessions) as session:
        lifecycle.mark_submitted(session, batch_id, job.id, job.status)
    logger.info(
        "run %s model %s: batch %s submitted (%s requests, row %s)",
        run_id, label, job.id, len(custom_ids), batch_id,
    )  # fmt: skip
    return True


def upload(client: together.Together, batch_id: int, lines: list[BatchLine]) -> str:
    """The lines as a JSONL file uploaded with purpose `batch-api`; the file's id."""
    with tempfile.TemporaryDirectory(prefix="evalfleet-batch-") as folder:
        path = Path(folder) / f"evalfleet-batch-{batch_id}.jsonl"
        path.write_bytes(file_content(lines))
        uploaded = client.files.upload(file=path, purpose="batch-api")
    return uploaded.id
