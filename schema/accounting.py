"""What a run has used so far: tokens and dollars per model label (and the judge's, under
JUDGE_LABEL), calls and 429s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evalfleet.schema.models import Answer, Item, Judgement
from evalfleet.schema.payloads import JUDGE_LABEL, RunConfig
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
    for a label without a price. JUDGE_LABEL among `labels`: the judge's tokens, from its
    judgements; its calls and 429s are counted in the items it graded (api_calls), so its
    own entry counts none, and a sum over the labels counts each call once."""
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
    labels = list(labels)
    if JUDGE_LABEL in labels:
        tokens[JUDGE_LABEL] = judge_tokens(session, run_id)
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


def judge_tokens(session: Session, run_id: int) -> tuple[int, int]:
    """The judge's prompt and completion tokens bought for this run (rule and cache: none)."""
    prompt, completion = session.execute(
        select(func.sum(Judgement.prompt_tokens), func.sum(Judgement.completion_tokens)).where(
            Judgement.run_id == run_id, Judgement.cached.is_(False)
        )
    ).one()
    return int(prompt or 0), int(completion or 0)


def spent_usd(session: Session, run_id: int, config: RunConfig) -> float:
    """Dollars spent so far: every model's answers and the judge's grades (`--budget`)."""
    labels = [*config.models, *([JUDGE_LABEL] if config.judge is not None else [])]
    usage = usage_by_label(session, run_id, labels, config.prices)
    return sum(u.cost_usd or 0.0 for u in usage.values())
