"""What a reservation hands back: a slot to send at, or when to ask again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalfleet.workers.ratelimit import tuning
from evalfleet.workers.ratelimit.limits import Limits


class RateLimitTimeout(TimeoutError):
    """The limiter could not grant a slot within the caller's timeout."""


@dataclass(frozen=True)
class Reservation:
    """Answer of one `reserve` call; times in seconds, `slot` on Redis' clock."""

    granted: bool  # True: a slot is yours, send at `slot`; False: ask again later
    wait_s: float  # until the slot (granted) or until asking again is worthwhile
    slot: float
    reserved_at: float  # when Redis handed it out


def from_reply(reply: Sequence[Any]) -> list[Reservation]:
    """The reservations in reserve.lua's reply: consecutive slots `spacing` apart, at
    least one (a refusal is one reservation, not granted)."""
    granted, wait_s, slot, count, spacing, now = reply
    ok, wait, first, at, gap = (
        int(granted) == 1,
        float(wait_s),
        float(slot),
        float(now),
        float(spacing),
    )
    # Built directly: dataclasses.replace, once per slot, was half of this call's CPU.
    return [Reservation(ok, wait + i * gap, first + i * gap, at) for i in range(max(1, int(count)))]


def reserve_args(limits: Limits, tokens: int, most: int) -> list[float]:
    """ARGV of reserve.lua, in its order."""
    return [
        tokens,
        int(limits.adaptive),
        limits.fixed_rpm,
        limits.initial_rpm,
        limits.max_rpm,
        limits.tpm or 0,
        limits.horizon_s,
        tuning.KEY_TTL_S,
        most,
        tuning.BATCH_SPAN_S,
    ]
