"""The judge's request and the reading of its reply (docs/architecture.md, "The judge").

One definition of the format: the workers build the prompt and read the reply here, and the
simulator's judge reads the prompt back with `read_judge_prompt` (simulator/judge.py), so the
two cannot drift apart. The user message is four delimited sections (question, story
excerpt, references, answer), the answer last and closed by an end marker, so an answer that
holds any text at all is read back whole."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# The verdicts, as schema/models.py's JudgeVerdict spells them (not imported: the simulator
# reads this module without loading SQLAlchemy; a unit test keeps the two equal).
CORRECT, INCORRECT, NOT_ATTEMPTED = "correct", "incorrect", "not_attempted"
VERDICTS = (CORRECT, INCORRECT, NOT_ATTEMPTED)
QUESTION, EXCERPT, REFERENCES, ANSWER = "QUESTION", "STORY EXCERPT", "REFERENCE ANSWERS", "ANSWER"
SECTIONS = (QUESTION, EXCERPT, REFERENCES, ANSWER)
END = "=== END ==="
# What the references section says for a question the story does not answer.
NO_REFERENCES = "(none: the story does not answer this question)"
# The story around the answer: enough for a CoQA rationale, bounded so that a long SQuAD
# article or a user's document does not make every judge request a long one.
EXCERPT_CHARS = 1500
# A verdict line and a one-line reason; a judge that rambles is cut here (and still read).
JUDGE_MAX_TOKENS = 96
REASON_MAX_CHARS = 300

JUDGE_SYSTEM_PROMPT = (
    "You grade answers to questions about a story. Compare the answer with the reference "
    "answers, using the story excerpt. The answer is correct when it says what a reference "
    "says, even in other words or inside a longer sentence; incorrect when it says something "
    "else or contradicts a reference; not_attempted when it declines or says the story does "
    "not tell. When there is no reference, the story does not answer the question: an answer "
    "saying so is correct, any other is incorrect.\n"
    "Reply with exactly two lines:\n"
    "VERDICT: correct, incorrect or not_attempted\n"
    "REASON: one short sentence"
)


def header(section: str) -> str:
    return f"=== {section} ==="


def story_excerpt(story: str, anchors: Sequence[str], limit: int = EXCERPT_CHARS) -> str:
    """The whole story when it is short; else `limit` characters around the first anchor
    (a reference, then the answer) found in it, or its beginning when none is."""
    if len(story) <= limit:
        return story.strip()
    lowered = story.lower()
    found = (lowered.find(a.strip().lower()) for a in anchors if a.strip())
    at = next((position for position in found if position >= 0), 0)
    start = max(0, min(at - limit // 2, len(story) - limit))
    end = start + limit
    # Cut at white space, not inside a word; mark the cuts.
    if start > 0:
        space = story.find(" ", start, end)
        start = space + 1 if space >= 0 else start
    if end < len(story):
        space = story.rfind(" ", start, end)
        end = space if space > start else end
    before, after = ("... " if start > 0 else ""), (" ..." if end < len(story) else "")
    return f"{before}{story[start:end].strip()}{after}"


def build_judge_messages(
    question: str, story: str, references: Sequence[str], answer: str
) -> list[dict[str, str]]:
    """The judge's chat messages for one answer."""
    listed = "\n".join(f"- {' '.join(r.split())}" for r in references) or NO_REFERENCES
    excerpt = story_excerpt(story, [*references, answer])
    body = "\n".join(
        (
            header(QUESTION), question.strip(),
            header(EXCERPT), excerpt,
            header(REFERENCES), listed,
            header(ANSWER), answer,
            END,
        )
    )  # fmt: skip
    return [
        {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
        {"role": "user", "content": body},
    ]


@dataclass(frozen=True)
class JudgePrompt:
    """A judge prompt read back: what the judge is asked to grade."""

    question: str
    excerpt: str
    references: tuple[str, ...]
    answer: str


class NotAJudgePrompt(ValueError):
    """The text does not hold the judge prompt's sections in order."""


def read_judge_prompt(text: str) -> JudgePrompt:
    """The sections of a user message that `build_judge_messages` made."""
    parts: dict[str, str] = {}
    position = 0
    for index, section in enumerate(SECTIONS):
        marker = header(section) + "\n"
        start = text.find(marker, position)
        if start < 0:
            raise NotAJudgePrompt(f"no {header(section)!r} section")
        start += len(marker)
        if index + 1 < len(SECTIONS):
            end = text.find("\n" + header(SECTIONS[index + 1]) + "\n", start)
        else:
            end = text.rfind("\n" + END)
        if end < start:
            raise NotAJudgePrompt(f"the {header(section)!r} section is not closed")
        parts[section] = text[start:end]
        position = end + 1
    listed = parts[REFERENCES].strip()
    references = () if listed == NO_REFERENCES else tuple(
        line[2:].strip() for line in listed.splitlines() if line.startswith("- ")
    )  # fmt: skip
    return JudgePrompt(parts[QUESTION].strip(), parts[EXCERPT].strip(), references, parts[ANSWER])


@dataclass(frozen=True)
class JudgeReply:
    verdict: str  # one of VERDICTS
    reason: str | None


def format_judge_reply(verdict: str, reason: str) -> str:
    """A reply in the format the system prompt asks for (what the simulator's judge says)."""
    return f"VERDICT: {verdict}\nREASON: {reason}"


class UnreadableReply(ValueError):
    """The judge's reply holds no verdict: stored as the judgement's error, never graded."""


_VERDICT_WORD = r"\b(not[\s_-]+attempted|incorrect|correct)\b"
# "VERDICT: correct", "**Verdict** - incorrect", "verdict = not attempted"
_VERDICT_LINE = re.compile(r"^\W*verdict\W*" + _VERDICT_WORD, re.I | re.M)
# Without that line: a reply that starts with its verdict, or says "the answer is X"
_LEADING_VERDICT = re.compile(r"^\W*" + _VERDICT_WORD, re.I)
_STATED_VERDICT = re.compile(r"\banswer (?:is|was)\s+" + _VERDICT_WORD, re.I)
_ANY_VERDICT = re.compile(_VERDICT_WORD, re.I)
_REASON_LINE = re.compile(r"^\W*reason\W*[:=-]\s*(.*\S)", re.I | re.M)


def _verdict_word(word: str) -> str:
    return re.sub(r"[\s_-]+", "_", word.lower())


def read_judge_reply(text: str) -> JudgeReply:
    """The verdict and reason of a reply in the asked format, read leniently (any case,
    markdown around the words); without a VERDICT line, a reply that starts with its
    verdict or says "the answer is X", when it names no other verdict (a reply listing the
    options, "correct, incorrect or not_attempted", grades nothing). UnreadableReply when
    it holds none."""
    found = _VERDICT_LINE.search(text)
    if found is None and len({_verdict_word(w) for w in _ANY_VERDICT.findall(text)}) == 1:
        found = _LEADING_VERDICT.match(text) or _STATED_VERDICT.search(text)
    if found is None:
        shown = " ".join(text.split())[:120]
        raise UnreadableReply(f"the judge's reply holds no verdict: {shown!r}")
    word = _verdict_word(found.group(1))
    reason_line = _REASON_LINE.search(text)
    reason = reason_line.group(1) if reason_line else text[found.end() :]
    one_line = " ".join(reason.split()).lstrip(" .:=-*").rstrip(" *")[:REASON_MAX_CHARS]
    return JudgeReply(word, one_line or None)
