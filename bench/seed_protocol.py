"""The seed notebook's protocol (the Together docs' CoQA notebook), as the baseline of
bench/throughput.py: a ThreadPool of 8 over stories, each story's turns asked one after
the other for each model, one shared `together` client without retries, and `questions`
history (earlier questions only, no answers).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.pool import ThreadPool

import together

from evalfleet.producer.dataset import Story
from evalfleet.schema.payloads import HistoryMode
from evalfleet.workers.prompts import build_messages

POOL_SIZE = 8
MAX_TOKENS = 128


@dataclass(frozen=True)
class SeedResult:
    wall_s: float
    requests: int
    answered: int
    errors: int  # the notebook scores these as "Invalid Response"


@dataclass
class _Counts:
    requests: int = 0
    answered: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ok: bool) -> None:
        with self.lock:
            self.requests += 1
            self.answered += int(ok)
            self.errors += int(not ok)


def ask_story(
    client: together.Together, story: Story, models: Sequence[str], counts: _Counts
) -> list[str]:
    """Every turn of one story, in order, for each model: one request at a time."""
    questions = [(q.turn, q.text, q.references) for q in story.questions]
    answers = []
    for model in models:
        for turn, _, _ in questions:
            messages = build_messages(story.text, questions, turn, HistoryMode.QUESTIONS)
            try:
                response = client.chat.completions.create(
                    model=model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=0.0,
                    max_tokens=MAX_TOKENS,
                )
                text = response.choices[0].message.content or ""  # type: ignore[union-attr]
                counts.add(ok=bool(text.strip()))
                answers.append(text)
            except together.APIError:
                counts.add(ok=False)
                answers.append("Invalid Response")
    return answers


def run_seed_protocol(
    base_url: str, stories: Sequence[Story], models: Mapping[str, str], pool_size: int = POOL_SIZE
) -> SeedResult:
    """Wall time of the whole protocol over `stories` against `base_url`."""
    client = together.Together(api_key="x", base_url=base_url, max_retries=0)
    counts = _Counts()
    started = time.perf_counter()
    with ThreadPool(pool_size) as pool:
        pool.map(lambda story: ask_story(client, story, list(models.values()), counts), stories)
    wall = time.perf_counter() - started
    client.close()
    return SeedResult(wall, counts.requests, counts.answered, counts.errors)
