"""Who the judge was, what its calls cost (`schema/accounting.py`'s `judge_usage`, from the
judgements table) and how its grades agree with EM and F1: the judge's part of a run's
summary (docs/architecture.md, "The judge"). A run without a judge has none, and no report
says anything about one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalfleet.aggregator.agreement import ModelAgreement, agreement_to_json
from evalfleet.schema.accounting import JudgeUsage

__all__ = ["JudgeSummary"]


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
