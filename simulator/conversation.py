"""Read a chat request's messages as a QA conversation: story, earlier turns, question."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalfleet.simulator.text import approx_tokens

__all__ = [
    "Conversation",
    "MessageError",
    "greedy_rng",
    "parse_messages",
    "prompt_tokens",
    "sampling_rng",
    "style_rng",
]

# "Story:" / "Passage:" / "Context:" introduce the passage in many prompt templates.
_PASSAGE_MARKER = re.compile(r"^\s*(?:story|passage|context|text|document)\s*:\s*", re.I | re.M)
# A short first or last paragraph with these words is an instruction, not the story.
_INSTRUCTION_CUES = re.compile(
    r"\b(?:answer|answers|question|questions|story|passage|context|you are|respond|reply)\b",
    re.I,
)
_INSTRUCTION_MAX_CHARS = 300


class MessageError(ValueError):
    """The `messages` field is not a list of chat messages."""


@dataclass(frozen=True)
class Conversation:
    """What the reader needs: the passage, earlier (question, answer) turns, the question."""

    story: str
    history: tuple[tuple[str, str], ...]
    question: str


def parse_messages(messages: Any) -> Conversation:
    """Find the story (system messages), the earlier turns and the last user question."""
    if not isinstance(messages, list) or not messages:
        raise MessageError("`messages` must be a non-empty list")
    system: list[str] = []
    turns: list[tuple[str, str]] = []  # (role, content) of user/assistant messages
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise MessageError(f"messages[{position}] must be an object with a `role`")
        content = _content_text(message.get("content"), position)
        role = message["role"]
        if role == "system":
            system.append(content)
        elif role in ("user", "assistant"):
            turns.append((role, content))
    user_positions = [i for i, (role, _) in enumerate(turns) if role == "user"]
    if not user_positions:
        return Conversation(_strip_instructions("\n\n".join(system)), (), "")
    last_user = user_positions[-1]
    question = turns[last_user][1]
    history = _pair_turns(turns[:last_user])
    story = _strip_instructions("\n\n".join(system))
    if not story.strip():
        story, question, history = _story_from_user_turns(question, history)
    return Conversation(story, history, question)


def prompt_tokens(messages: Sequence[Any]) -> int:
    """Approximate prompt size: white-space words over every message's text."""
    total = 0
    for position, message in enumerate(messages):
        if isinstance(message, dict):
            total += approx_tokens(_content_text(message.get("content"), position))
    return total


def greedy_rng(model: str, messages: Any) -> random.Random:
    """The model's own randomness: fixed by (model, messages), whatever the seed."""
    return random.Random(_digest(["greedy", model, messages]))


def style_rng(model: str, messages: Any) -> random.Random:
    """The model's output quirks (empty, long, non-ASCII answers): fixed by (model, messages),
    like its greedy answer, and apart from that answer's stream so as not to change it."""
    return random.Random(_digest(["style", model, messages]))


def sampling_rng(model: str, messages: Any, seed: int | None, temperature: float) -> random.Random:
    """Temperature noise: seeded by (model, messages, seed); fresh entropy without a seed,
    as a real sampler would be."""
    if seed is None:
        return random.Random()
    return random.Random(_digest(["sample", model, messages, seed, temperature]))


def _digest(parts: list[Any]) -> int:
    # sha256 of canonical JSON: stable across processes, unlike the salted hash().
    encoded = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return int.from_bytes(hashlib.sha256(encoded).digest()[:8], "big")


def _content_text(content: Any, position: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # OpenAI-style content parts: keep the text ones.
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    raise MessageError(f"messages[{position}].content must be a string or a list of parts")


def _pair_turns(turns: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """(question, answer) pairs; a question with no answer after it pairs with ""."""
    pairs: list[tuple[str, str]] = []
    for role, content in turns:
        if role == "user":
            pairs.append((content, ""))
        elif pairs and not pairs[-1][1]:
            pairs[-1] = (pairs[-1][0], content)
    return tuple(pairs)


def _strip_instructions(system_text: str) -> str:
    """The passage inside the system text: after a "Story:" marker if there is one, else
    without a short instruction paragraph at either end."""
    marker = _PASSAGE_MARKER.search(system_text)
    if marker:
        return system_text[marker.end() :].strip()
    paragraphs = [p for p in re.split(r"\n\s*\n", system_text.strip()) if p.strip()]
    if len(paragraphs) > 1 and _looks_like_instruction(paragraphs[0]):
        paragraphs = paragraphs[1:]
    if len(paragraphs) > 1 and _looks_like_instruction(paragraphs[-1]):
        paragraphs = paragraphs[:-1]
    return "\n\n".join(paragraphs)


def _looks_like_instruction(paragraph: str) -> bool:
    text = paragraph.strip()
    return (
        "\n" not in text
        and len(text) <= _INSTRUCTION_MAX_CHARS
        and bool(_INSTRUCTION_CUES.search(text))
    )


def _story_from_user_turns(
    question: str, history: tuple[tuple[str, str], ...]
) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """No system prompt: the story is the first user message, or, when there is only one,
    everything in it but its last line (the question)."""
    if history:
        story = _strip_instructions(history[0][0])
        return story, question, history[1:]
    lines = [line for line in question.strip().splitlines() if line.strip()]
    if len(lines) > 1:
        return _strip_instructions("\n".join(lines[:-1])), lines[-1], ()
    return "", question, ()
