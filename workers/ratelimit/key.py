"""Which Redis key a limit lives under (docs/architecture.md, "Rate limiter")."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Every limiter key starts so (bench/chaos.py clears them by it).
PREFIX = "evalfleet:rl"


@dataclass(frozen=True)
class LimitKey:
    """What one limit applies to: a provider's base URL and one model."""

    base_url: str
    model: str

    def redis_key(self) -> str:
        # Hashed URL: no credentials or odd characters from the URL end up in key names,
        # which are logged and listed (docs/architecture.md, D9).
        digest = hashlib.sha1(self.base_url.encode("utf-8")).hexdigest()[:12]
        return f"{PREFIX}:{digest}:{self.model}"
