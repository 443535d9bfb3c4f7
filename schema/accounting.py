"""What a run has used so far: tokens and dollars per model label, calls and 429s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evalfleet.schema.models import Answer, Item
from evalfleet.schema.pricing import cost_usd


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None when the model has no price
    api_calls: int
    rate_limited: int


def usage_by_label(
    session: Session,
    run_id: int,
    labels: Iterable[str],
    prices: Mapping[str, tuple[float, float] | None],
) -> dict[str, Usage]:
    """Tokens of answers bought for this run (cached answers cost nothing); the cost is None
    for a label without a price."""
    tokens = {
        label: (int(p or 0), int(c or 0))
        for label, p, c in session.execute(
            select(
                Answer.model_label,
                func.sum(Answer.prompt_tokens),
                func.sum(Answer.completion_tokens),
            )
            .where(Answer.run_id == run_id, Answer.cached.is_(False))
            .group_by(Answer.model_label)
        )
    }
    calls = {
        label: (int(n or 0), int(r or 0))
        for label, n, r in session.execute(
            select(Item.model_label, func.sum(Item.api_calls), func.sum(Item.rate_limited))
            .where(Item.run_id == run_id)
            .group_by(Item.model_label)
        )
    }
    usage = {}
    for label in labels:
        price = prices.get(label)
        prompt, completion = tokens.get(label, (0, 0))
        api_calls, rate_limited = calls.get(label, (0, 0))
        usage[label] = Usage(
            prompt, completion, cost_usd(price, prompt, completion), api_calls, rate_limited
        )
    return usage


def spent_usd(
    session: Session,
    run_id: int,
    labels: Iterable[str],
    prices: Mapping[str, tuple[float, float] | None],
) -> float:
    usage = usage_by_label(session, run_id, labels, prices)
    return sum(u.cost_usd or 0.0 for u in usage.values())
