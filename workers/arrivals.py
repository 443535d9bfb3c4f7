"""Results stored as they arrive: the loop an item's answers (workers/answering.py) and its
judgements (workers/judging.py) share, so that a worker killed mid-item loses only the
requests still in flight, never those already answered."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TypeVar

from evalfleet.workers.requesting import CallCounts

T = TypeVar("T")
# store(earlier, batch, urgent, last): write `batch` (what arrived since the last call,
# `earlier` what came before it); `last` when nothing is left to come and nothing raised
# (the write that may close the item), `urgent` when nothing is left to come at all.
Store = Callable[[list[T], list[T], bool, bool], None]


def store_as_they_arrive(
    ready: list[T], pending: set[Future[T]], counts: CallCounts, store: Store[T]
) -> list[T]:
    """Store `ready` at once, then the results of `pending` as they complete, together when
    several completed meanwhile; this thread writes, so the request threads only talk HTTP.
    If a store or a request raises (the database went away), the other requests stop before
    their next attempt (`counts.cancel()`), and the first error is raised once all have
    ended. Every result, in the order stored."""
    results: list[T] = []
    error: BaseException | None = None
    while True:
        try:
            store(results, ready, not pending, not pending and error is None)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others end
            counts.cancel()
            error = error or exc
        results.extend(ready)
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
    return results
