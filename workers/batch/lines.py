"""Batch file lines: one chat-completion request per question, named by its `custom_id`,
and the split of one model's lines into files within the provider's limits."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

# Together's limits per batch file; settings make them smaller (tests, other providers).
MAX_REQUESTS = 50_000
MAX_BYTES = 100_000_000
MAX_CUSTOM_ID = 64  # characters, Together's limit
_CUSTOM_ID = re.compile(r"run(\d+)-item(\d+)-turn(\d+)")


class CustomIdError(ValueError):
    """A batch line names no question of this run."""


@dataclass(frozen=True)
class QuestionRef:
    """What a custom_id names: one turn of one item (one model over one story) of a run."""

    run_id: int
    item_id: int
    turn: int


def custom_id(run_id: int, item_id: int, turn: int) -> str:
    return f"run{run_id}-item{item_id}-turn{turn}"


def parse_custom_id(text: object, run_id: int) -> QuestionRef:
    """The question a line answers; CustomIdError when it is not one of run `run_id`'s."""
    match = _CUSTOM_ID.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise CustomIdError(f"custom_id {text!r} is not of the form run<R>-item<I>-turn<T>")
    ref = QuestionRef(int(match[1]), int(match[2]), int(match[3]))
    if ref.run_id != run_id:
        raise CustomIdError(f"custom_id {text!r} belongs to run {ref.run_id}, not run {run_id}")
    return ref


@dataclass(frozen=True)
class BatchLine:
    """One request of a batch file, and where its answer goes."""

    custom_id: str
    item_id: int
    story_id: int
    turn: int
    body: dict[str, object]  # the chat-completion request, as the synchronous path sends it
    cache_key: str | None

    def encoded(self) -> bytes:
        line = {"custom_id": self.custom_id, "body": self.body}
        return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def split_lines(
    lines: Sequence[BatchLine], max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES
) -> list[list[BatchLine]]:
    """Consecutive parts of at most `max_requests` lines and `max_bytes` bytes each (a line
    longer than `max_bytes` alone is refused: no file could carry it)."""
    parts: list[list[BatchLine]] = []
    current: list[BatchLine] = []
    size = 0
    for line in lines:
        length = len(line.encoded())
        if length > max_bytes:
            raise ValueError(
                f"{line.custom_id}: one request of {length} bytes is over the batch file "
                f"limit of {max_bytes} bytes"
            )
        if current and (len(current) >= max_requests or size + length > max_bytes):
            parts.append(current)
            current, size = [], 0
        current.append(line)
        size += length
    if current:
        parts.append(current)
    return parts


def file_content(lines: Sequence[BatchLine]) -> bytes:
    return b"".join(line.encoded() for line in lines)
