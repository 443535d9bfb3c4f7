"""The in-memory form of a QA data set, shared by every loader: stories with their turns."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    """One turn of a conversation: the question and every gold reference answer.

    No references: the story does not answer the question (SQuAD 2.0 `is_impossible`, CoQA
    "unknown"); it is right only to say so (aggregator/no_answer.py).
    """

    turn: int  # 1-based, as CoQA's turn_id
    text: str
    references: tuple[str, ...]
    # SQuAD 2.0's guesses a reader might make for an impossible question: kept as read, never
    # references, so neither stored nor in the fingerprint.
    plausible_answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Story:
    """A passage and its questions; `key` is the data set's own id, unique in the data set."""

    key: str
    source: str  # CoQA domain (mctest, gutenberg, race, cnn, wikipedia, ...), or the SQuAD title
    text: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Dataset:
    """A loaded data set: where it came from, and its stories in order."""

    name: str  # "coqa", or the file path it was read from
    split: str
    stories: tuple[Story, ...]

    @property
    def fingerprint(self) -> str:
        """sha256 of the content that scoring depends on, so two runs can be shown to match."""
        digest = hashlib.sha256()
        for story in self.stories:
            record = [
                story.key,
                story.source,
                story.text,
                [[q.turn, q.text, list(q.references)] for q in story.questions],
            ]
            digest.update(json.dumps(record, ensure_ascii=False).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    @property
    def question_count(self) -> int:
        return sum(len(story.questions) for story in self.stories)
