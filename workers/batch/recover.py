"""Re-send the poll of every open batch no live poller holds (docs/architecture.md, D1 and
D10): a poller killed mid-way, or a producer killed before it sent the polls, is resumed by
the sweep (or `evalfleet reconcile`), from what the batch row recorded."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.models import OPEN_BATCH_STATES, Batch, utcnow
from evalfleet.workers.batch.messages import send_poll

logger = logging.getLogger(__name__)
# A row never polled is given this long for its first poll (sent with a countdown of one
# poll interval by the producer) before it counts as lost.
FIRST_POLL_GRACE_S = 120.0


def resend_lost_polls(celery: Any, sessions: sessionmaker[Session], run_id: int) -> int:
    now = utcnow()
    with sessions() as session:
        lost = list(
            session.scalars(
                select(Batch.id).where(
                    Batch.run_id == run_id,
                    Batch.state.in_(OPEN_BATCH_STATES),
                    or_(
                        Batch.poll_lease_until < now,
                        and_(
                            Batch.poll_lease_until.is_(None),
                            Batch.created_at < now - timedelta(seconds=FIRST_POLL_GRACE_S),
                        ),
                    ),
                )
            )
        )
    for batch_id in lost:
        send_poll(celery, batch_id)
    if lost:
        logger.warning("run %s: re-sent the polls of %s batches", run_id, len(lost))
    return len(lost)
