"""Who the judge was, what its calls cost (read from the judgements table) and how its grades
agree with EM and F1: the judge's part of a run's summary (docs/architecture.md, "The judge
metric"). A run without a judge has none, and no report says anything about one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from evalfleet.aggregator.agreement import ModelAgreement, agreement_to_json
from evalfleet.schema.models import Judgement
from evalfleet.schema.payloads import JUDGE_LABEL, RunConfig
from evalfleet.schema.pricing import cost_usd

__all__ = ["JudgeSummary", "JudgeUsage", "judge_usage"]


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
    """The run's judge's rows, one aggregate statement; None when the run has no judge."""
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


@dataclass(frozen=True)
class JudgeSummary:
    """The judge of a run (or of both runs compared) and its audit."""

    model: str
    usage: JudgeUsage | None  # None in a cross-run comparison: each run's report has its own
    agreement: tuple[ModelAgreement, ...]  # empty until the run is scored

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "usage": None if self.usage is None else self.usage.to_json(),
            "agreement": agreement_to_json(self.agreement),
        }
