"""Which models of a running run fail right now, and how: the line `status` and `run --wait`
show ("base: API unreachable (connection refused), retrying") while the progress sits still.

Read from SQL only (docs/architecture.md, D1): an open item keeps the reason its last
delivery was handed back with (`items.last_error`, schema/lifecycle.py's hand_back), and a
turn that failed for good stores its error in `answers.error`. A model is in trouble when
it has such reasons, they all name one kind of failure (or a few, then listed), and none of
its answers succeeded within the last QUIET_S seconds: answers still arriving mean the
failures are the occasional kind the retries absorb."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evalfleet.schema.models import (
    OPEN_ITEM_STATES,
    Answer,
    Item,
    Run,
    RunState,
    as_utc,
    utcnow,
)

QUIET_S = 15.0  # longer than a request's own retries take to hand an item back
KINDS_SHOWN = 2

# What the retry layers put before the reason (workers/tasks.py, workers/delivery.py).
_WRAPPERS = re.compile(r"^(failed after \d+ tries|gave up after \d+ deliveries): ", re.IGNORECASE)
_STATUS = re.compile(r"^(\w+) \((\d{3})\)")
# Stored reasons hold the exception's text (workers/errors.py's describe); the phrases of
# workers/connection_cause.py and the OS's own words both name the cause.
_NETWORK = (
    (("connection refused",), "API unreachable (connection refused)"),
    (("dns lookup failed", "name or service not known", "nodename nor servname",
      "name resolution"), "API unreachable (DNS lookup failed)"),
    (("tls ", "ssl", "certificate"), "API unreachable (TLS error)"),
    (("apitimeouterror", "timed out", "timeout"), "API not answering (timeout)"),
    (("host unreachable", "network is unreachable"), "API unreachable (host unreachable)"),
    (("connection reset",), "API unreachable (connection reset)"),
    (("connection cut mid-response",), "API cutting responses short (connection cut)"),
    (("apiconnectionerror", "connection error"), "API unreachable (connection error)"),
    # Answered 200, but no chat completion in it, or the content filter withheld the answer
    # (workers/answer_body.py): the endpoint's failures, never the model's answers.
    (("invalidresponseerror",), "API answering 200 without a chat completion"),
    (("contentfilterederror",), "answers withheld by the content filter"),
)  # fmt: skip


def failure_kind(reason: str) -> str:
    """A stored failure reason as the few words that say how requests fail."""
    text = _WRAPPERS.sub("", reason.strip())
    status = _STATUS.match(text)
    if status:
        code = status.group(2)
        return "rate limited (429)" if code == "429" else f"API answering HTTP {code}"
    lowered = text.lower()
    for needles, kind in _NETWORK:
        if any(needle in lowered for needle in needles):
            return kind
    name = re.match(r"^(\w+)(:|$)", text)
    return f"failing ({name.group(1)})" if name else f"failing ({text[:60]})"


@dataclass(frozen=True)
class ModelTrouble:
    label: str
    kinds: tuple[str, ...]  # most frequent first; one when every request fails the same way
    retrying: bool  # open items wait for their retry (not only turns that failed for good)

    @property
    def line(self) -> str:
        shown = self.kinds[:KINDS_SHOWN]
        more = len(self.kinds) - len(shown)
        kind = shown[0] if len(shown) == 1 else "failing: " + "; ".join(shown)
        kind += f" and {more} more" if more else ""
        return f"{self.label}: {kind}, {'retrying' if self.retrying else 'not retried'}"


def troubled_models(
    session: Session, run_id: int, now: datetime | None = None, quiet_s: float = QUIET_S
) -> list[ModelTrouble]:
    """The models of a running run whose recent requests all fail, in the run's order."""
    run = session.execute(select(Run.state, Run.config).where(Run.id == run_id)).one_or_none()
    if run is None or run.state != RunState.RUNNING.value:
        return []
    since = (now or utcnow()) - timedelta(seconds=quiet_s)
    # Each distinct reason once with its count (first seen first, as the rows came before):
    # a model whose every turn fails stores thousands of the same error.
    handed_back: dict[str, Counter[str]] = {}
    for label, reason, n in session.execute(
        select(Item.model_label, Item.last_error, func.count())
        .where(
            Item.run_id == run_id,
            Item.state.in_(OPEN_ITEM_STATES),
            Item.last_error.is_not(None),
        )
        .group_by(Item.model_label, Item.last_error)
        .order_by(func.min(Item.id))
    ):
        handed_back.setdefault(label, Counter())[reason or ""] += n
    failed_turns: dict[str, Counter[str]] = {}
    for label, error, n in session.execute(
        select(Answer.model_label, Answer.error, func.count())
        .where(Answer.run_id == run_id, Answer.error.is_not(None), Answer.created_at >= since)
        .group_by(Answer.model_label, Answer.error)
        .order_by(func.min(Answer.id))
    ):
        failed_turns.setdefault(label, Counter())[error or ""] += n
    last_answer = dict(
        session.execute(
            select(Answer.model_label, func.max(Answer.created_at))
            .where(Answer.run_id == run_id, Answer.error.is_(None))
            .group_by(Answer.model_label)
        ).all()
    )
    troubles = []
    for label in run.config.get("models", {}):
        reasons = handed_back.get(label, Counter()) + failed_turns.get(label, Counter())
        answered = last_answer.get(label)
        if not reasons or (answered is not None and as_utc(answered) >= since):
            continue
        kinds: Counter[str] = Counter()
        for reason, n in reasons.items():
            kinds[failure_kind(reason)] += n
        ordered = tuple(kind for kind, _ in kinds.most_common())
        troubles.append(ModelTrouble(label, ordered, retrying=label in handed_back))
    return troubles
