"""A run's summary (or two runs' compared) as typed values, and its JSON form.

`to_json()` gives the document `status --json`, `report --format json` and `compare` print:
its keys, their order and their values are a public format, fixed by
tests/unit/aggregator/fixtures/*.json.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from evalfleet.aggregator.aggregate import DomainScore
from evalfleet.aggregator.judge_summary import JudgeSummary
from evalfleet.aggregator.paired import PairedComparison
from evalfleet.aggregator.paired_json import comparison_to_json
from evalfleet.aggregator.samples import SamplingNoise, noise_to_json
from evalfleet.aggregator.truncation import Truncation, truncation_warnings
from evalfleet.aggregator.verdict import verdict
from evalfleet.schema.accounting import Usage

__all__ = [
    "CrossRunSummary",
    "DatasetInfo",
    "FailedQuestion",
    "ModelSummary",
    "Progress",
    "RunSide",
    "RunSummary",
    "Summary",
    "score_json",
]


def score_json(score: DomainScore, judged: bool = False) -> dict[str, Any]:
    """The counts and scores of one model on one domain (or overall), without the names;
    `judged` (the run has a judge) adds the judge's accuracy."""
    document = {
        "questions": score.questions,
        "answered": score.answered,
        "failed": score.failed,
        "scored": score.scored,
        "em": score.em,
        "f1": score.f1,
    }
    return document | {"judge": score.judge} if judged else document


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    split: str
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "split": self.split, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class ModelSummary:
    """One model: its scores overall and per source domain, its tokens, calls and cost."""

    model: str
    overall: DomainScore
    domains: Mapping[str, DomainScore]  # by domain name, in score order (sorted)
    usage: Usage
    # HasAns and NoAns scores (aggregator/answerability.py); empty, and left out of the JSON,
    # when every question of the run has an answer.
    answerability: Mapping[str, DomainScore] = field(default_factory=dict)
    # Its answers cut at max_tokens (aggregator/truncation.py).
    truncation: Truncation = field(default_factory=Truncation)
    judged: bool = False  # the run has a judge: its accuracy is shown beside EM and F1

    def to_json(self) -> dict[str, Any]:
        document = {
            "model": self.model,
            **score_json(self.overall, self.judged),
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "cost_usd": self.usage.cost_usd,
            "api_calls": self.usage.api_calls,
            "rate_limited": self.usage.rate_limited,
            **self.truncation.to_json(),
            "domains": {domain: score_json(s, self.judged) for domain, s in self.domains.items()},
        }
        if self.answerability:
            document["answerability"] = {
                g: score_json(s, self.judged) for g, s in self.answerability.items()
            }
        return document


@dataclass(frozen=True)
class FailedQuestion:
    """A question a model failed to answer (left out of the scores), with its error."""

    model: str  # the model's label
    story: str  # the story key
    turn: int
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "story": self.story, "turn": self.turn, "error": self.error}


@dataclass(frozen=True)
class Progress:
    """Live figures for `status`, already rounded as shown."""

    settled: int  # questions answered or failed, all models
    questions: int
    elapsed_s: float
    answers_per_s: float
    requests_per_s: float
    api_calls: int
    share_429: float
    eta_s: float
    cost_usd: float | None  # None when a model has no price

    @property
    def answered(self) -> str:
        return f"{self.settled}/{self.questions}"

    def to_json(self) -> dict[str, Any]:
        return {
            "answered": self.answered,
            "elapsed_s": self.elapsed_s,
            "answers_per_s": self.answers_per_s,
            "requests_per_s": self.requests_per_s,
            "api_calls": self.api_calls,
            "share_429": self.share_429,
            "eta_s": self.eta_s,
            "cost_usd": self.cost_usd,
        }


@dataclass(frozen=True, kw_only=True)
class Summary(ABC):
    """What every summary holds: the scores of its models, their failures, the comparisons."""

    state: str
    error: str | None
    dataset: DatasetInfo
    history: str
    models: Mapping[str, ModelSummary]  # by label, in run-config order (reference first)
    failures: tuple[FailedQuestion, ...]  # the first FAILURES_SHOWN
    failures_total: int
    comparisons: tuple[PairedComparison, ...]  # every other model against the first
    sampling_noise: tuple[SamplingNoise, ...] = ()  # per model; empty unless --samples K > 1
    judge: JudgeSummary | None = None  # None: the run has no judge

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The JSON document, keys in their published order."""

    @property
    def warnings(self) -> list[str]:
        """What a reader of the scores must know: models with many answers cut by max_tokens."""
        return truncation_warnings({label: m.truncation for label, m in self.models.items()})

    def _head_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "error": self.error,
            "dataset": self.dataset.to_json(),
            "history": self.history,
        }

    def _scores_json(self) -> dict[str, Any]:
        return {
            "models": {label: m.to_json() for label, m in self.models.items()},
            "failures": [f.to_json() for f in self.failures],
            "failures_total": self.failures_total,
            "warnings": self.warnings,
            # Keyed by the compared (other) label; each with its verdict line.
            "comparison": {
                c.other: {"verdict": verdict(c).line, **comparison_to_json(c)}
                for c in self.comparisons
            },
            # Only with a judge: who it was, its cost, its agreement with EM and F1.
            **({"judge": self.judge.to_json()} if self.judge else {}),
        }


@dataclass(frozen=True, kw_only=True)
class RunSummary(Summary):
    """One run: stored results once it is done, a live computation before."""

    run_id: int
    created_at: datetime
    finished_at: datetime | None
    item_states: Mapping[str, int]  # items per state, sorted by state
    progress: Progress

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            **self._head_json(),
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "items": dict(self.item_states),
            "progress": self.progress.to_json(),
            **self._scores_json(),
            # Only when each question was asked several times: a run asked once reads as before.
            **(
                {"sampling_noise": noise_to_json(self.sampling_noise)}
                if self.sampling_noise
                else {}
            ),
        }


@dataclass(frozen=True)
class RunSide:
    """One side of a cross-run comparison: which model of which run."""

    run_id: int
    label: str  # the model's label in its run
    model: str
    name: str  # its name in the report, "label (run N)"
    state: str

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "label": self.label,
            "model": self.model,
            "name": self.name,
            "state": self.state,
        }


@dataclass(frozen=True, kw_only=True)
class CrossRunSummary(Summary):
    """One model of run B against one of run A over the same data; A is the reference."""

    runs: tuple[RunSide, RunSide]  # (A, B)

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [side.to_json() for side in self.runs],
            **self._head_json(),
            **self._scores_json(),
        }
