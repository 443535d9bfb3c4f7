"""The limiter's Lua scripts, shipped as package data (*.lua beside this module).

All of a key's state changes inside these scripts: each runs atomically in Redis and reads
Redis' clock, so workers on machines with skewed clocks agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import redis
from redis.commands.core import Script

_PACKAGE = "evalfleet.workers.ratelimit"  # where the *.lua files are (package data)
_PRELUDE = "prelude.lua"  # helpers and `now`, `key`: put in front of every script


@cache
def source(name: str) -> str:
    """The full text of script `name` (e.g. "reserve.lua"): the prelude, then its body."""
    package = resources.files(_PACKAGE)
    return package.joinpath(_PRELUDE).read_text("utf-8") + package.joinpath(name).read_text("utf-8")


@dataclass(frozen=True)
class Scripts:
    """The scripts registered on one client (redis-py sends each by its SHA, loading it once)."""

    reserve: Script  # reserve.lua: the next slot(s), or when to ask again
    success: Script  # success.lua: count a success, grow the rate
    limited: Script  # limited.lua: count a 429, block, cut the rate

    @classmethod
    def register(cls, client: redis.Redis) -> Scripts:
        return cls(
            reserve=client.register_script(source("reserve.lua")),
            success=client.register_script(source("success.lua")),
            limited=client.register_script(source("limited.lua")),
        )
