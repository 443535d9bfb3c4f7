"""The settings of one limit, checked and resolved once (docs/architecture.md, D7)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What the scripts are told about one limit; rates in requests (tokens) per minute."""

    adaptive: bool  # learn the rate from 429s and successes (AIMD)
    fixed_rpm: float  # the fixed rate; 0 when adaptive or when requests are not limited
    initial_rpm: float  # the adaptive rate before Redis has any state for the key
    min_rpm: float  # the adaptive rate never falls below it
    max_rpm: float  # nor grows above it (the user's rpm when given)
    tpm: float | None  # tokens per minute, spaced like requests; None = no token limit
    horizon_s: float  # slots are reserved at most this far ahead

    @classmethod
    def resolve(
        cls,
        rpm: float | None,
        tpm: float | None,
        adaptive: bool,
        initial_rpm: float,
        min_rpm: float,
        max_rpm: float,
        horizon_s: float,
    ) -> Limits:
        """`rpm`: with `adaptive=False` a fixed rate (None = no request limit), with
        `adaptive=True` a cap on the learned rate. Raises ValueError on nonsense."""
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number, got {value}")
        if not 0 < min_rpm <= max_rpm:
            raise ValueError(f"need 0 < min_rpm <= max_rpm, got {min_rpm} and {max_rpm}")
        if not horizon_s > 0:
            raise ValueError(f"horizon_s must be > 0, got {horizon_s}")
        cap = max_rpm if rpm is None else max(min_rpm, min(max_rpm, rpm))
        return cls(
            adaptive=adaptive,
            fixed_rpm=0.0 if adaptive or rpm is None else float(rpm),
            initial_rpm=max(min_rpm, min(initial_rpm, cap)),
            min_rpm=min_rpm,
            max_rpm=cap,
            tpm=tpm,
            horizon_s=horizon_s,
        )
