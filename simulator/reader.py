"""Simulated readers: answer a question about a story with word-overlap heuristics.

Two kinds stand in for a base model and its fine-tuned version. "verbose" answers
with the whole best-matching sentence (often with a chatty prefix), as base models
do; "concise" extracts a short span or yes/no, as CoQA fine-tunes do. Both make
seeded mistakes, so the fine-tuned one scores clearly higher on EM/F1 without
being perfect. A question about a name the story never mentions, none of whose words the
story holds either, gets each kind's "does not say" (the concise one in the prompt's word,
"unknown"). Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from evalfleet.simulator.text import STOPWORDS, is_content, sentences, stem, words

__all__ = ["ERROR_RATES", "answer", "off_the_story", "rank_sentences"]

# How often each kind picks a wrong sentence at temperature 0 (the model's own errors).
ERROR_RATES: dict[str, float] = {"verbose": 0.15, "concise": 0.10}
_CHATTY_RATE = 0.35
_CHATTY_PREFIXES = (
    "Based on the story, ",
    "According to the passage, ",
    "The story says that ",
    "Sure! ",
)
# Extra chance per unit of temperature to sample another candidate sentence.
_FLIP_PER_TEMPERATURE = 0.12
_MAX_FLIP = 0.6
# Ranking bonuses, in units of the story's mean idf, tuned by hand on the 20-story
# CoQA sample: by offset from the previous answer's sentence, and for a sentence that
# holds the kind of thing asked for (a name for "who", a number for "how many").
_PROXIMITY: dict[int, float] = {0: 0.5, 1: 0.5, 2: 0.2}
_TYPE_BONUS = 1.0
_SPAN_MAX_WORDS = 4

_YES_NO_STARTS = frozenset(
    "is was did does do are were can could has have had will would should am".split()
)
_NEGATIONS = frozenset("not no never nothing nobody none neither nor n't cannot".split())
_NUMBER_WORDS = frozenset(
    """zero one two three four five six seven eight nine ten eleven twelve thirteen
    fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty
    sixty seventy eighty ninety hundred thousand million billion first second third
    once twice several few dozen""".split()
)
_COLORS = frozenset(
    """red orange yellow green blue purple pink brown black white gray grey gold silver
    tan""".split()
)
_TIME_WORDS = frozenset(
    """monday tuesday wednesday thursday friday saturday sunday january february march
    april may june july august september october november december morning afternoon
    evening night noon midnight today tomorrow yesterday week weeks month months year
    years day days spring summer autumn fall winter century later before after during
    ago""".split()
)
_PLACE_PREPOSITIONS = frozenset(
    "in at on to into onto near from under inside behind across through by".split()
)
_NUMERIC_NOUNS = frozenset("population cost price age number amount".split())
_NAME_NOUNS = frozenset(
    "name named called city country state county town nation company team".split()
)
_TIME_NOUNS = frozenset("year date day month time century".split())
_UNKNOWN = {"verbose": "I don't know.", "concise": "unknown"}
_DIGITS = re.compile(r"\d")
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201c\u201d]+)[\"\u201d]")


@dataclass(frozen=True)
class _Passage:
    sentences: tuple[str, ...]
    stems: tuple[frozenset[str], ...]
    idf: dict[str, float]
    # Each sentence's words with their stems: every question of a story ranks them all.
    words: tuple[tuple[tuple[str, str], ...], ...]


def answer(
    model_kind: str,
    story: str,
    question: str,
    rng: random.Random,
    temperature: float = 0.0,
    *,
    history: Sequence[tuple[str, str]] = (),
    sampling_rng: random.Random | None = None,
) -> str:
    """Answer `question` about `story` as a reader of `model_kind` would.

    `rng` drives the model's own (greedy) mistakes and style; `sampling_rng`, if
    given, drives temperature noise alone, so that two sampling seeds differ only a
    little (defaults to `rng`). `history` holds the earlier (question, answer) turns.
    """
    if model_kind not in ERROR_RATES:
        raise ValueError(f"unknown reader kind {model_kind!r}")
    passage = _passage(story)
    if not passage.sentences or _unanswered(passage, question):
        return _UNKNOWN[model_kind]
    ranked = _rank(passage, question, history)
    choice = ranked[0]
    others = [i for i in ranked if i != choice]
    # Draw in a fixed order so that one input always consumes the rng the same way.
    mistake = rng.random() < ERROR_RATES[model_kind]
    wrong_pick = rng.choice(others) if others else choice
    if mistake:
        choice = wrong_pick
    if temperature > 0 and others:
        noise = sampling_rng if sampling_rng is not None else rng
        if noise.random() < min(_MAX_FLIP, _FLIP_PER_TEMPERATURE * temperature):
            # Sampling mostly lands on a near-miss: one of the next best candidates.
            near = [i for i in ranked[:4] if i != choice]
            choice = noise.choice(near) if near else choice
    sentence = passage.sentences[choice]
    if model_kind == "verbose":
        return _verbose(sentence, rng)
    return _concise(sentence, question, passage)


def rank_sentences(story: str, question: str, history: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The story's sentences, best match for the question first (ties: story order)."""
    passage = _passage(story)
    return [passage.sentences[i] for i in _rank(passage, question, history)]


def _rank(passage: _Passage, question: str, history: Sequence[tuple[str, str]]) -> list[int]:
    question_stems = _content_stems(question)
    # Conversations walk through the story: favour sentences at or just after the
    # previous answer ("what did she do next?" shares no word with its answer).
    anchor = _anchor(passage, *history[-1]) if history else None
    mean_idf = sum(passage.idf.values()) / max(1, len(passage.idf))
    question_words = [w.lower() for w in words(question)]
    typed = bool(question_words) and question_words[0] not in _YES_NO_STARTS
    scores = []
    for index, sentence_stems in enumerate(passage.stems):
        score = sum(passage.idf[s] for s in question_stems & sentence_stems)
        if typed:
            sentence_words = [w for w, _ in passage.words[index]]
            fresh = [w for w, w_stem in passage.words[index] if w_stem not in question_stems]
            # A sentence holding the kind of thing asked for (a name, a number) is likelier.
            if _typed_span(question_words, sentence_words, fresh):
                score += mean_idf * _TYPE_BONUS
        if anchor is not None:
            score += mean_idf * _PROXIMITY.get(index - anchor, 0.0)
        scores.append((-score, index))
    return [index for _, index in sorted(scores)]


def _anchor(passage: _Passage, question: str, answer_text: str) -> int | None:
    answer_stems = _content_stems(answer_text)
    question_stems = _content_stems(question)
    best: tuple[float, int] | None = None
    for index, sentence_stems in enumerate(passage.stems):
        score = 2 * sum(passage.idf[s] for s in answer_stems & sentence_stems)
        score += sum(passage.idf[s] for s in question_stems & sentence_stems)
        if score > 0 and (best is None or score > best[0]):
            best = (score, index)
    return None if best is None else best[1]


@functools.lru_cache(maxsize=256)
def _passage(story: str) -> _Passage:
    """Sentences, their content stems and idf weights; cached, as every turn of a
    conversation re-sends the same story."""
    split = tuple(sentences(story))
    stems = tuple(frozenset(_content_stems(s)) for s in split)
    document_frequency: dict[str, int] = {}
    for sentence_stems in stems:
        for s in sentence_stems:
            document_frequency[s] = document_frequency.get(s, 0) + 1
    count = len(split)
    idf = {s: math.log(1 + count / df) for s, df in document_frequency.items()}
    sentence_words = tuple(tuple((w, stem(w)) for w in words(s)) for s in split)
    return _Passage(split, stems, idf, sentence_words)


def off_the_story(story: str, question: str) -> bool:
    """Whether the readers take the story not to answer the question: it names something (a
    capitalised word past its first) the story never mentions, and shares no content word with
    it. Conversational follow-ups ("What did he do?") name nothing, so they are answered."""
    return _unanswered(_passage(story), question)


def _unanswered(passage: _Passage, question: str) -> bool:
    known = set().union(*passage.stems)
    names = [w for w in words(question)[1:] if w[:1].isupper() and is_content(w)]
    unnamed = any(stem(w) not in known for w in names)
    return unnamed and not (_content_stems(question) & known)


def _content_stems(text: str) -> set[str]:
    return {stem(w) for w in words(text) if is_content(w)}


def _verbose(sentence: str, rng: random.Random) -> str:
    if rng.random() < _CHATTY_RATE:
        prefix = rng.choice(_CHATTY_PREFIXES)
        body = sentence[:1].lower() + sentence[1:] if prefix.endswith("that ") else sentence
        return prefix + body
    return sentence


def _concise(sentence: str, question: str, passage: _Passage) -> str:
    question_words = [w.lower() for w in words(question)]
    if not question_words:
        return _UNKNOWN["concise"]
    sentence_words = words(sentence)
    question_stems = _content_stems(question)
    first = question_words[0]
    if first in _YES_NO_STARTS or (first in {"and", "so", "but"} and _is_yes_no(question_words)):
        return _yes_no(sentence_words, question_stems, passage)
    fresh = [w for w in sentence_words if stem(w) not in question_stems]
    span = _typed_span(question_words, sentence_words, fresh, sentence)
    if span:
        return span
    return _first_fresh_span(sentence_words, question_stems) or _UNKNOWN["concise"]


def _is_yes_no(question_words: list[str]) -> bool:
    return len(question_words) > 1 and question_words[1] in _YES_NO_STARTS


def _yes_no(sentence_words: list[str], question_stems: set[str], passage: _Passage) -> str:
    lowered = {w.lower() for w in sentence_words}
    negated = bool(lowered & _NEGATIONS) or any(w.endswith("n't") for w in lowered)
    known = set().union(*passage.stems)
    # A question about things the story never mentions is usually answered "no".
    missing = [s for s in question_stems if s not in known]
    return "no" if negated or missing else "yes"


def _typed_span(
    question_words: list[str], sentence_words: list[str], fresh: list[str], sentence: str = ""
) -> str:
    joined = " ".join(question_words[:3])
    if question_words[0] in {"what", "which"}:
        # Titles, nicknames and names are often quoted: "the forgotten borough".
        fresh_lower = {w.lower() for w in fresh}
        for quoted in _QUOTED.findall(sentence):
            if 0 < len(words(quoted)) <= 6 and fresh_lower & {w.lower() for w in words(quoted)}:
                return " ".join(words(quoted))
    if joined.startswith(("how many", "how much", "how old", "how long")) or (
        _NUMERIC_NOUNS & set(question_words)
    ):
        numbers = [w for w in fresh if _DIGITS.search(w) or w.lower() in _NUMBER_WORDS]
        return numbers[0] if numbers else ""
    if "color" in question_words or "colour" in question_words:
        colors = [w.lower() for w in fresh if w.lower() in _COLORS]
        return " and ".join(dict.fromkeys(colors)) if colors else ""
    if question_words[0] in {"who", "whom", "whose"} or _NAME_NOUNS & set(question_words):
        return _capitalized_run(sentence_words, fresh)
    if question_words[0] == "when" or _TIME_NOUNS & set(question_words):
        times = [w for w in fresh if w.lower() in _TIME_WORDS or _DIGITS.search(w)]
        return " ".join(times[:3])
    if question_words[0] == "where":
        return _after_preposition(sentence_words, {w.lower() for w in fresh})
    if question_words[0] == "why":
        return _after_marker(sentence_words, ("because", "so", "to"))
    return ""


def _capitalized_run(sentence_words: list[str], fresh: list[str]) -> str:
    """The first run of capitalised new words (a name); a lone first word of the
    sentence counts only when nothing else does (it is capitalised anyway)."""
    fresh_set = set(fresh)
    runs: list[tuple[int, list[str]]] = []
    for position, w in enumerate(sentence_words):
        if w[:1].isupper() and w in fresh_set and w.lower() not in STOPWORDS:
            if runs and runs[-1][0] + len(runs[-1][1]) == position:
                runs[-1][1].append(w)
            else:
                runs.append((position, [w]))
    later = [run for start, run in runs if start > 0 or len(run) > 1]
    chosen = later or [run for _, run in runs]
    return " ".join(chosen[0][:4]) if chosen else ""


def _after_preposition(sentence_words: list[str], fresh_lower: set[str]) -> str:
    for position, w in enumerate(sentence_words[:-1]):
        following = sentence_words[position + 1 : position + _SPAN_MAX_WORDS]
        if w.lower() in _PLACE_PREPOSITIONS and any(f.lower() in fresh_lower for f in following):
            return " ".join([w, *following[:3]])
    return ""


def _after_marker(sentence_words: list[str], markers: tuple[str, ...]) -> str:
    lowered = [w.lower() for w in sentence_words]
    for marker in markers:
        if marker in lowered:
            start = lowered.index(marker)
            tail = sentence_words[start : start + _SPAN_MAX_WORDS + 1]
            if len(tail) > 1:
                return " ".join(tail)
    return ""


def _first_fresh_span(sentence_words: list[str], question_stems: set[str]) -> str:
    """1-4 words the question lacks, taken next to where the question matched."""
    in_question = [stem(w) in question_stems or not is_content(w) for w in sentence_words]
    matched = [i for i, w in enumerate(sentence_words) if stem(w) in question_stems]
    runs: list[tuple[int, int]] = []  # [start, end) of content-led runs of new words
    start: int | None = None
    for position, w in enumerate(sentence_words):
        new_content = not in_question[position]
        if start is None and new_content:
            start = position
        elif start is not None and stem(w) in question_stems:
            runs.append((start, position))
            start = None
    if start is not None:
        runs.append((start, len(sentence_words)))
    if not runs:
        return ""

    def distance(run: tuple[int, int]) -> float:
        if not matched:
            return float(run[0])
        after = min((run[0] - m for m in matched if m < run[0]), default=None)
        before = min((m - run[1] + 1 for m in matched if m >= run[1]), default=None)
        # Answers tend to follow the words the question repeats (subject, verb, answer).
        options = [d for d in (after, None if before is None else before + 1.5) if d is not None]
        return min(options) if options else float(run[0])

    run_start, run_end = min(runs, key=distance)
    span = sentence_words[run_start : min(run_end, run_start + _SPAN_MAX_WORDS)]
    while span and not is_content(span[-1]):
        span.pop()
    return " ".join(span)
