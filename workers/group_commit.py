"""Group commit: the answers of every item a process works on, written by one thread, one
transaction for all that arrived while the previous one was being written.

Each caller still blocks until its own rows are committed (an answer is durable before the
item moves on), but one transaction carries the answers of many items: one per answer cost a
database transaction per API request (bench/throughput.py). A write that does not hold up its
caller's next request (the concurrent history modes) waits up to WINDOW_S for company, like
PostgreSQL's commit_delay; an `urgent` one (`model` history, where the next turn waits for
it, and an item's last answers, which its end waits for) is committed at once, with every
write already queued, and ends the wait of any batch it joins. An item's last write carries
its close (lifecycle.close_each): the item ends in the same transaction as its last
answers, not in one of its own.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.db import session_scope, upsert
from evalfleet.schema.lifecycle import ItemClose, close_each
from evalfleet.schema.models import ANSWER_KEY, JUDGEMENT_KEY, Answer, CachedResponse, Judgement
from evalfleet.workers import metrics

logger = logging.getLogger(__name__)

MAX_BATCH_ROWS = 1000  # one statement's parameters stay small
# Per-answer stores of 64 concurrent requests took 2,000-2,800 transactions per 1,500
# answers; a 50 ms window cut PostgreSQL's CPU by a third (bench/throughput.py).
WINDOW_S = 0.05


@dataclass
class _Write:
    answers: Sequence[dict[str, Any]]
    responses: Sequence[dict[str, Any]]
    urgent: bool
    close: ItemClose | None = None
    judgements: Sequence[dict[str, Any]] = ()
    done: threading.Event = field(default_factory=threading.Event)
    committed: bool = False
    may_be_last: bool = False  # the close may have been its run's last (close_each)
    error: BaseException | None = None

    def rows(self) -> int:
        return len(self.answers) + len(self.judgements)


class GroupCommitWriter:
    """Writes answer rows and judgements (and the cached responses that go with them) for all
    threads of one process. `write` blocks until the rows are committed and raises what the
    commit raised."""

    def __init__(self, sessions: sessionmaker[Session], window_s: float = WINDOW_S) -> None:
        self._sessions = sessions
        self._window_s = window_s
        self._queue: queue.SimpleQueue[_Write] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def write(
        self,
        answers: Sequence[dict[str, Any]],
        responses: Sequence[dict[str, Any]],
        urgent: bool = False,
        close: ItemClose | None = None,
        judgements: Sequence[dict[str, Any]] = (),
    ) -> bool:
        """Commit the rows, and close the item `close` names with them (urgent then). True
        when that close may have been its run's last: the caller claims the aggregation."""
        if not answers and not responses and not judgements and close is None:
            return False
        pending = _Write(answers, responses, urgent or close is not None, close, judgements)
        self._start()
        self._queue.put(pending)
        pending.done.wait()
        if not pending.committed:
            raise pending.error or RuntimeError("the answer writer stopped before committing")
        return pending.may_be_last

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            rows = batch[0].rows()
            urgent = batch[0].urgent
            gather_until = time.monotonic() + self._window_s
            while rows < MAX_BATCH_ROWS:
                try:
                    # Urgent: no waiting, but every write queued meanwhile goes along (short
                    # items close one after another: one transaction each was most of the
                    # database's work per item, bench/short_items.py).
                    pending = (
                        self._queue.get_nowait()
                        if urgent
                        else self._queue.get(timeout=max(0.0, gather_until - time.monotonic()))
                    )
                except queue.Empty:
                    break
                batch.append(pending)
                rows += pending.rows()
                urgent = urgent or pending.urgent
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[_Write]) -> None:
        try:
            try:
                self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - handed to the callers
                if len(batch) == 1:
                    batch[0].error = exc
                    return
                # One caller's bad rows must not fail the others: each alone, its own error.
                logger.warning("group commit of %s writes failed (%s): one by one", len(batch), exc)
                for pending in batch:
                    try:
                        self._commit([pending])
                    except Exception as single:  # noqa: BLE001 - handed to the caller
                        pending.error = single
        finally:
            for pending in batch:
                pending.done.set()

    def _commit(self, batch: list[_Write]) -> None:
        # Sorted by key: two processes writing overlapping rows take their locks in one order,
        # so they cannot deadlock.
        answers = sorted(
            (row for pending in batch for row in pending.answers),
            key=lambda row: tuple(row[column] for column in ANSWER_KEY),
        )
        judgements = sorted(
            (row for pending in batch for row in pending.judgements),
            key=lambda row: tuple(row[column] for column in JUDGEMENT_KEY),
        )
        responses = sorted(
            (row for pending in batch for row in pending.responses), key=lambda row: row["key"]
        )
        closes = [pending.close for pending in batch if pending.close is not None]
        with session_scope(self._sessions) as session:
            new = upsert(session, Answer.__table__, answers, ANSWER_KEY, returning=["model_label"])
            graded = upsert(
                session,
                Judgement.__table__,
                judgements,
                JUDGEMENT_KEY,
                returning=["judge", "verdict"],
            )
            upsert(session, CachedResponse.__table__, responses, ("key",))
            last_runs = close_each(session, closes)
        for pending in batch:
            pending.committed = True
            pending.may_be_last = pending.close is not None and pending.close.run_id in last_runs
        # Only rows this commit created: a duplicate delivery's upsert changes nothing.
        metrics.count_answers(str(row.model_label) for row in new)
        metrics.count_judgements((str(row.judge), row.verdict) for row in graded)
