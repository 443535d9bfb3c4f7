"""Settings of the simulated Together endpoint: models, latency, faults, rate limits."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DEFAULT_MODELS",
    "DEMO_MODELS",
    "SIM_BASE",
    "SIM_FINETUNED",
    "SIM_JUDGE",
    "FAULT_KINDS",
    "JUDGE_KIND",
    "READER_KINDS",
    "LatencyDistribution",
    "SimConfig",
]

LatencyDistribution = Literal["fixed", "exponential", "lognormal"]

# Reader kinds: "verbose" answers with a story sentence (base-like), "concise" with a
# short span (fine-tuned-like), see simulator.reader; "judge" grades an answer from the
# references in a judge prompt, see simulator.judge.
JUDGE_KIND = "judge"
READER_KINDS: frozenset[str] = frozenset({"verbose", "concise", JUDGE_KIND})

# The simulator's models, the one place their names are written: two readers and a judge.
SIM_BASE, SIM_FINETUNED = "evalfleet/sim-base", "evalfleet/sim-finetuned"
SIM_JUDGE = "evalfleet/sim-judge"
DEFAULT_MODELS: dict[str, str] = {
    SIM_BASE: "verbose", SIM_FINETUNED: "concise", SIM_JUDGE: JUDGE_KIND,
}  # fmt: skip
# The demo's, the tests' and the benchmarks' pair, by run label.
DEMO_MODELS: dict[str, str] = {"base": SIM_BASE, "finetuned": SIM_FINETUNED}

_DEFAULT_CONTEXT_LENGTH = 8192

# Order matters: one uniform draw walks these cumulative probabilities. Every kind is the
# endpoint's failure, never the model's answer (a model's own empty answer, which is scored,
# is `empty_answer_rate`).
FAULT_KINDS: tuple[str, ...] = (
    "429", "503", "500", "timeout", "malformed", "no_choices", "content_filter", "reset", "cut",
)  # fmt: skip


@dataclass(frozen=True)
class SimConfig:
    """Everything the simulator can be told; probabilities are per chat request, 0..1."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = let the OS pick a free port
    latency_ms_mean: float = 0.0
    latency_distribution: LatencyDistribution = "fixed"
    # On top of the base latency, per generated token (after the max_tokens cut): a long
    # answer takes longer, as on a real server. 0 keeps the base latency alone.
    latency_ms_per_token: float = 0.0
    # The model's own output, drawn per request from (model, messages) so that a retry gets
    # the same (simulator.generation): an empty answer with finish_reason "stop", a long one
    # (cut at max_tokens when longer), one with non-ASCII text. Shares 0..1 of the answers.
    empty_answer_rate: float = 0.0
    long_answer_rate: float = 0.0
    unicode_answer_rate: float = 0.0
    fault_429: float = 0.0
    fault_503: float = 0.0
    fault_500: float = 0.0
    fault_timeout: float = 0.0  # sleep timeout_s, then answer normally
    fault_malformed: float = 0.0  # 200 with a body that is not JSON
    fault_no_choices: float = 0.0  # 200 with "choices": []
    fault_content_filter: float = 0.0  # 200, finish_reason "content_filter", content ""
    fault_reset: float = 0.0  # close the connection without answering
    fault_cut: float = 0.0  # status line, headers and half the body, then close
    timeout_s: float = 30.0
    seed: int = 0  # seeds fault injection and latency sampling
    # One limit for every model (each counted separately), or a limit per model name
    # (unlisted models are unlimited); None = no limit.
    rpm_per_model: int | Mapping[str, int] | None = None
    # Token-bucket capacity; None = one second's worth (Together enforces per second).
    rate_burst: float | None = None
    required_api_key: str | None = field(default=None, repr=False)  # never in logs
    models: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MODELS))
    # Approximate tokens (white-space words); one value for all models, or per model
    # name (unlisted models get the default).
    context_length: int | Mapping[str, int] = _DEFAULT_CONTEXT_LENGTH

    def __post_init__(self) -> None:
        probabilities = self.fault_probabilities()
        for kind, probability in probabilities.items():
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"fault_{kind} must be within 0..1, got {probability}")
        total = sum(probabilities.values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities must sum to at most 1, got {total:g}")
        if self.latency_ms_mean < 0 or not math.isfinite(self.latency_ms_mean):
            raise ValueError(f"latency_ms_mean must be >= 0, got {self.latency_ms_mean}")
        if self.latency_distribution not in ("fixed", "exponential", "lognormal"):
            raise ValueError(f"unknown latency_distribution {self.latency_distribution!r}")
        if self.timeout_s < 0:
            raise ValueError(f"timeout_s must be >= 0, got {self.timeout_s}")
        if not self.models:
            raise ValueError("models must name at least one model")
        for name, kind in self.models.items():
            if kind not in READER_KINDS:
                raise ValueError(
                    f"model {name!r}: unknown reader kind {kind!r}, "
                    f"expected one of {sorted(READER_KINDS)}"
                )
        for name, rpm in self.rpm_limits().items():
            if rpm <= 0:
                raise ValueError(f"rpm limit for {name!r} must be > 0, got {rpm}")
        if self.rate_burst is not None and self.rate_burst < 1:
            raise ValueError(f"rate_burst must be >= 1, got {self.rate_burst}")
        for name, length in self.context_lengths().items():
            if length <= 0:
                raise ValueError(f"context length of {name!r} must be > 0, got {length}")
        if self.latency_ms_per_token < 0 or not math.isfinite(self.latency_ms_per_token):
            raise ValueError(f"latency_ms_per_token must be >= 0, got {self.latency_ms_per_token}")
        for name, rate in self.answer_rates().items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name}_answer_rate must be within 0..1, got {rate}")

    def answer_rates(self) -> dict[str, float]:
        """Share of each kind of the model's own unusual answers (simulator.generation)."""
        return {
            "empty": self.empty_answer_rate,
            "long": self.long_answer_rate,
            "unicode": self.unicode_answer_rate,
        }

    def fault_probabilities(self) -> dict[str, float]:
        """Probability of each fault kind, in FAULT_KINDS order."""
        return {
            "429": self.fault_429,
            "503": self.fault_503,
            "500": self.fault_500,
            "timeout": self.fault_timeout,
            "malformed": self.fault_malformed,
            "no_choices": self.fault_no_choices,
            "content_filter": self.fault_content_filter,
            "reset": self.fault_reset,
            "cut": self.fault_cut,
        }

    def context_lengths(self) -> dict[str, int]:
        """Context length (approximate tokens) of every model."""
        if isinstance(self.context_length, int):
            return dict.fromkeys(self.models, self.context_length)
        lengths = dict.fromkeys(self.models, _DEFAULT_CONTEXT_LENGTH)
        lengths.update(self.context_length)
        return lengths

    def rpm_limits(self) -> dict[str, int]:
        """Requests-per-minute limit of each limited model."""
        if self.rpm_per_model is None:
            return {}
        if isinstance(self.rpm_per_model, int):
            return dict.fromkeys(self.models, self.rpm_per_model)
        return dict(self.rpm_per_model)
