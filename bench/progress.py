"""The benches' progress lines: each starts with '#', so the last line alone is the JSON."""

from __future__ import annotations


def say(message: str) -> None:
    print(f"# {message}", flush=True)
