"""The adaptive limiter against a limit it is not told, with and without random 429s
(docs/architecture.md, "Rate limiter"; bench/README.md).

    .venv/bin/python bench/noisy_limit.py [--seconds 75] [--noise 0.1] [--initial-rpm N]
                                          [--noise-retry-after S]

An in-process provider limits one model to --limit-rpm (600) with the simulator's token
bucket (one second of burst) and answers its 429s with `retry-after` and
`x-ratelimit-reset` but no `x-ratelimit-limit`, as an API that does not state its quota;
on top, it answers --noise (10%) of the requests it let through 429 at random, with no
header (or `retry-after: --noise-retry-after`). 3 worker-like limiters (each its own Redis
client and slots ahead, like 3 worker processes) x 8 threads share one fresh limiter key in
the machine's Redis, adaptive from EVALFLEET_INITIAL_RPM's default; each thread acquires,
asks (100 ms latency, 429s at once) and reports like workers/requesting.py. Per case:
successes per minute over the middle 80% of the traffic / the limit (`sustained_fraction`),
and 429s / requests (`share_429`). Cases: the noisy one (rate_limit_noisy) and the same
without noise (rate_limit_noise_free). Prints progress lines starting with '#', then one
JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from evalfleet.schema.settings import Settings
from evalfleet.simulator.ratelimit import RateLimiter as Bucket
from evalfleet.workers.ratelimit import LimitKey, RateLimiter, RateLimitTimeout

REDIS_URL = "redis://127.0.0.1:6379/0"
MODEL = "bench/noisy-limit"
DEFAULT_INITIAL_RPM = float(Settings.model_fields["initial_rpm"].default)


def say(message: str) -> None:
    print(f"# {message}", flush=True)


@dataclass(frozen=True)
class Answer:
    ok: bool
    retry_after_s: float | None = None
    reset_s: float | None = None


class Provider:
    """A limit it does not state, and random 429s on top; thread-safe."""

    def __init__(
        self, limit_rpm: int, noise: float, noise_retry_after_s: float | None, seed: int
    ) -> None:
        self._bucket = Bucket({MODEL: limit_rpm})
        self._noise = noise
        self._noise_retry_after_s = noise_retry_after_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def ask(self, latency_s: float) -> Answer:
        decision = self._bucket.acquire(MODEL)
        assert decision is not None
        if not decision.allowed:  # the limit: what the simulator says, less the limit
            return Answer(False, float(decision.retry_after_s), float(decision.reset_s))
        with self._lock:
            noisy = self._rng.random() < self._noise
        if noisy:  # drawn after the bucket, as the simulator does: noise costs a token too
            return Answer(False, self._noise_retry_after_s)
        time.sleep(latency_s)
        return Answer(True)


@dataclass
class Tally:
    successes: list[float]
    requests: int = 0
    limited: int = 0


def _worker_thread(
    limiter: RateLimiter, provider: Provider, tally: Tally, lock: threading.Lock,
    deadline: float, latency_s: float,
) -> None:  # fmt: skip
    while time.monotonic() < deadline:
        try:
            limiter.acquire(timeout=max(0.1, deadline - time.monotonic()))
        except RateLimitTimeout:
            return  # blocked past the end of the case
        answer = provider.ask(latency_s)
        with lock:
            tally.requests += 1
            if answer.ok:
                tally.successes.append(time.monotonic())
            else:
                tally.limited += 1
        if answer.ok:
            limiter.on_success()
        else:
            limiter.on_rate_limited(answer.retry_after_s, answer.reset_s)


def measure_noisy_limit(
    limit_rpm: int = 600,
    noise: float = 0.1,
    *,
    seconds: float = 75.0,
    workers: int = 3,
    threads: int = 8,
    latency_s: float = 0.1,
    initial_rpm: float = DEFAULT_INITIAL_RPM,
    noise_retry_after_s: float | None = None,
    redis_url: str = REDIS_URL,
    seed: int = 1,
) -> dict[str, Any]:
    """One case: `workers` limiters x `threads` threads on one fresh key for `seconds`."""
    key = LimitKey(f"http://noisy-limit.invalid/{uuid.uuid4().hex}", MODEL)
    clients = [redis.Redis.from_url(redis_url) for _ in range(workers)]
    limiters = [RateLimiter(c, key, initial_rpm=initial_rpm) for c in clients]
    provider = Provider(limit_rpm, noise, noise_retry_after_s, seed)
    tally, lock = Tally([]), threading.Lock()
    started = time.monotonic()
    deadline = started + seconds
    pool = [
        threading.Thread(
            target=_worker_thread,
            args=(limiter, provider, tally, lock, deadline, latency_s),
            daemon=True,
        )
        for limiter in limiters
        for _ in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=seconds + 60)
    state = limiters[0].snapshot()
    clients[0].delete(key.redis_key())
    for client in clients:
        client.close()
    low, high = started + 0.1 * seconds, started + 0.9 * seconds
    middle = sum(low <= t <= high for t in tally.successes) / (high - low) * 60
    result = {
        "sustained_fraction": round(middle / limit_rpm, 3),
        "share_429": round(tally.limited / max(1, tally.requests), 4),
        "limit_rpm": limit_rpm,
        "noise": noise,
        "noise_retry_after_s": noise_retry_after_s,
        "initial_rpm": initial_rpm,
        "seconds": seconds,
        "requests": tally.requests,
        "rate_limited": tally.limited,
        "rate_at_end_rpm": round(state["rpm"], 1),
        "cuts": int(state["cuts"]),
    }
    say(
        f"noise {noise:g}: sustained {result['sustained_fraction']} of {limit_rpm}/min, "
        f"429 share {result['share_429']}, rate at end {result['rate_at_end_rpm']} rpm"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=75.0, help="of traffic per case")
    parser.add_argument("--limit-rpm", type=int, default=600)
    parser.add_argument("--noise", type=float, default=0.1, help="share answered 429 at random")
    parser.add_argument("--noise-retry-after", type=float, default=None)
    parser.add_argument("--initial-rpm", type=float, default=DEFAULT_INITIAL_RPM)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8, help="per worker")
    parser.add_argument("--redis", default=REDIS_URL)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    for name, noise in (("rate_limit_noisy", args.noise), ("rate_limit_noise_free", 0.0)):
        say(f"{name}: {args.seconds:g}s against {args.limit_rpm}/min, noise {noise:g}")
        out[name] = measure_noisy_limit(
            args.limit_rpm, noise, seconds=args.seconds, workers=args.workers,
            threads=args.threads, initial_rpm=args.initial_rpm,
            noise_retry_after_s=args.noise_retry_after, redis_url=args.redis,
        )  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
