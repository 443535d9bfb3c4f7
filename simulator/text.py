"""Cheap text helpers for the simulated readers: sentences, words, crude stems."""

from __future__ import annotations

import functools
import re

__all__ = [
    "STOPWORDS",
    "approx_tokens",
    "is_content",
    "sentences",
    "stem",
    "words",
]

# A sentence: text up to terminal punctuation (plus closing quotes) or a line break;
# a period before a digit ("$5.50") does not end it.
_SENTENCE = re.compile(r"(?:[^.!?\n]|\.(?=\d))+(?:[.!?]+[\"'\u201d\u2019)\]]*)?")
# Numbers keep their separators and currency ("$1,500.50"); words keep apostrophes.
_WORD = re.compile(r"\$?\d+(?:[.,]\d+)*|[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)*")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr lt col gen sgt spc pfc capt cpl maj rev prof inc co corp vs etc".split()
)
_SUFFIXES = ("ing", "ed", "es", "s", "e")

STOPWORDS: frozenset[str] = frozenset(
    """
    a an the and or but if then so of in on at to for from by with about as into onto
    over under up down out off than too very just also not no yes there here this that
    these those it its it's is are was were be been being am do does did done doing
    have has had having can could will would shall should may might must i me my we us
    our you your he him his she her they them their what who whom whose which when where
    why how all any some each every other another such own same s t don't didn't isn't
    wasn't weren't aren't doesn't won't can't couldn't one ones again more most much many
    like just only even still get got go went going say said tell told
    """.split()
)


def sentences(text: str) -> list[str]:
    """Split a passage into sentences, keeping "U.S.", "Mr." and "p.m." inside theirs."""
    spans: list[list[int]] = []
    for match in _SENTENCE.finditer(text):
        piece = match.group()
        if not _WORD.search(piece):
            continue
        line_break = bool(spans) and "\n" in text[spans[-1][1] : match.start()]
        if spans and not line_break and _continues(text[spans[-1][0] : spans[-1][1]], piece):
            spans[-1][1] = match.end()
        else:
            spans.append([match.start(), match.end()])
    return [text[start:end].strip() for start, end in spans]


def _continues(previous: str, piece: str) -> bool:
    """True when `previous` did not really end a sentence ("U.S. state", '"Why?" she said')."""
    following = piece.lstrip(" \"'(\u201c")
    if not following:
        return False
    if following[:1].islower():
        return True
    tokens = previous.split()
    if not previous.endswith(".") or not tokens:
        return False
    core = tokens[-1].rstrip(".").lstrip("(\"'")
    # Before a capital only initials (R.J.), acronyms (U.S.) and titles (Mr.) glue.
    return (len(core) == 1 and core.isupper()) or "." in core or core.lower() in _ABBREVIATIONS


def words(text: str) -> list[str]:
    """The words of a text, original case, punctuation dropped."""
    return _WORD.findall(text)


@functools.lru_cache(maxsize=1 << 16)  # every request re-reads a story's words
def stem(word: str) -> str:
    """A crude stem so that lived/live/living and house/houses meet."""
    lowered = word.lower().replace("\u2019", "'")
    if lowered.endswith("'s"):
        lowered = lowered[:-2]
    for suffix in _SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) - len(suffix) >= 3:
            lowered = lowered[: -len(suffix)]
            break
    return lowered[:6]


def is_content(word: str) -> bool:
    """True for words that carry meaning (not a stop word)."""
    return word.lower().replace("\u2019", "'") not in STOPWORDS


def approx_tokens(text: str) -> int:
    """Token count approximated by white-space words (cheap, stable)."""
    return len(text.split())
