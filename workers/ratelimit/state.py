"""Reads of a key's state outside the scripts: the rate in force, a snapshot for
`evalfleet status` and benchmarks, and whether a reserved slot went stale."""

from __future__ import annotations

import math
from typing import Any

import redis

from evalfleet.workers.ratelimit.limits import Limits


def current_rpm(client: redis.Redis, name: str, limits: Limits) -> float:
    """The rate in force now (inf when requests are not limited)."""
    if not limits.adaptive:
        return limits.fixed_rpm if limits.fixed_rpm > 0 else math.inf
    stored = client.hget(name, "rate")
    rate = float(stored) if stored is not None else limits.initial_rpm
    return min(rate, limits.max_rpm)


def snapshot(client: redis.Redis, name: str, limits: Limits) -> dict[str, float]:
    """Times in seconds (Redis' clock), counts as floats."""
    pipe = client.pipeline(transaction=True)
    pipe.time()
    pipe.hgetall(name)
    (seconds, micros), raw = pipe.execute()
    now = float(seconds) + float(micros) / 1e6
    state = {_text(k): float(v) for k, v in raw.items()}
    blocked_until = state.get("blocked_until", 0.0)
    return {
        "rpm": current_rpm(client, name, limits),
        "blocked_until": blocked_until,
        "blocked_for_s": max(0.0, blocked_until - now),
        "backlog_s": max(0.0, state.get("tat", now) - now),
        "last_429_rpm": state.get("ceiling", 0.0),
        "successes": state.get("successes", 0.0),
        "rate_limited": state.get("limited", 0.0),
        "cuts": state.get("cuts", 0.0),
    }


def is_stale(client: redis.Redis, name: str, reserved_at: float) -> bool:
    """Whether a block is on now, or the rate was cut after a slot reserved at `reserved_at`."""
    pipe = client.pipeline(transaction=False)
    pipe.time()
    pipe.hmget(name, "blocked_until", "last_cut")
    (seconds, micros), (blocked, last_cut) = pipe.execute()
    now = float(seconds) + float(micros) / 1e6
    return float(blocked or 0) > now or float(last_cut or 0) >= reserved_at


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
