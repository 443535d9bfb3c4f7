"""What a run has used so far: tokens and dollars per model label, the judge's (its
judgements), calls and 429s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
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
    for a label without a price. The judge's are `judge_usage`'s: its calls and 429s are
    counted in the items it graded (api_calls), so a sum over the labels counts each call
    once."""
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


@dataclass(frozen=True)
class JudgeUsage:
    """The judge's judgements of a run and the tokens and dollars of its calls."""

    judgements: int
    calls: int  # graded by a request: neither by rule nor from the cache
    by_rule: int  # EM = 1: graded correct with no call
    cached: int
    failed: int  # the judge could not grade them
    prompt_tokens: int  # of the calls only (cached grades cost nothing)
    completion_tokens: int
    cost_usd: float | None  # None: the run has no price for the judge

    def to_json(self) -> dict[str, Any]:
        return {
            "judgements": self.judgements,
            "calls": self.calls,
            "by_rule": self.by_rule,
            "cached": self.cached,
            "could_not_grade": self.failed,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
        }

    @property
    def line(self) -> str:
        dollars = "no price" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        return (
            f"{self.judgements} judgements: {self.calls} judge calls, {self.by_rule} graded by "
            f"rule (EM = 1, no call), {self.cached} from the cache, {self.failed} could not be "
            f"graded; {self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion "
            f"tokens, {dollars}"
        )


def _count(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def judge_usage(session: Session, run_id: int, config: RunConfig) -> JudgeUsage | None:
    """The rows of the run's judge (its model's, no other's), one aggregate statement, priced
    at `prices[JUDGE_LABEL]`; None when the run has no judge."""
    if config.judge is None:
        return None
    bought = Judgement.cached.is_(False)
    row = session.execute(
        select(
            func.count(), _count(Judgement.by_rule.is_(True)), _count(Judgement.cached.is_(True)),
            _count(Judgement.verdict.is_(None) | Judgement.error.is_not(None)),
            func.sum(case((bought, Judgement.prompt_tokens), else_=0)),
            func.sum(case((bought, Judgement.completion_tokens), else_=0)),
        ).where(Judgement.run_id == run_id, Judgement.judge == config.judge.model)
    ).one()  # fmt: skip
    judgements, by_rule, cached, failed, prompt, completion = (int(x or 0) for x in row)
    return JudgeUsage(
        judgements=judgements,
        calls=max(0, judgements - by_rule - cached),
        by_rule=by_rule,
        cached=cached,
        failed=failed,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost_usd(config.prices.get(JUDGE_LABEL), prompt, completion),
    )


def spent_usd(session: Session, run_id: int, config: RunConfig) -> float:
    """Dollars spent so far: every model's answers and the judge's grades (`--budget`)."""
    usage = usage_by_label(session, run_id, config.models, config.prices)
    judging = judge_usage(session, run_id, config)
    judged = (judging.cost_usd or 0.0) if judging is not None else 0.0
    return sum(u.cost_usd or 0.0 for u in usage.values()) + judged
