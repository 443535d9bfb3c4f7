"""What decoding adds to the reader's answer: a model's own empty, long and non-ASCII answers,
and the time its tokens take (docs/architecture.md, "Simulator").

Real models, unlike the readers, sometimes answer nothing at all (a base model at
temperature 0 did, with finish_reason "stop"), ramble on past the answer until max_tokens
cuts them, or answer in curly quotes, another script or an emoji. Each quirk comes at a
configured rate (SimConfig's *_answer_rate, all 0 by default so that scores stay as they
were), drawn from (model, messages) alone: the same request always gets the same answer,
as a deterministic model's retry would.
"""

from __future__ import annotations

import random
from typing import Any

from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.conversation import style_rng
from evalfleet.simulator.text import approx_tokens, sentences

__all__ = ["LONG_WORDS", "UNICODE_FORMS", "generation_s", "style_answer"]

# A long answer's length in words, drawn uniformly: past the default max_tokens (128) for
# most of them, as a base model that does not stop.
LONG_WORDS = (60, 300)
# Non-ASCII around the answer: curly quotes, accents, Cyrillic, CJK, right-to-left, an emoji
# (4 bytes in UTF-8), a no-break space.
UNICODE_FORMS: tuple[str, ...] = (
    "\u201c{}\u201d",
    "R\u00e9ponse\u00a0: {}",
    "\u041e\u0442\u0432\u0435\u0442: {}",
    "\u7b54\u3048\uff1a{}",
    "\u0627\u0644\u0625\u062c\u0627\u0628\u0629: {}",
    "{} \U0001f642",
    "{} \u2014 voil\u00e0, c\u2019est \u00e7a.",
)


def style_answer(content: str, story: str, model: str, messages: Any, config: SimConfig) -> str:
    """The reader's answer as this model's decoding would give it, at the configured rates."""
    rates = config.answer_rates()
    if not any(rates.values()) or not content:
        return content  # the default: no draw, not even the rng's seed
    rng = style_rng(model, messages)
    # Every draw made, in a fixed order, so that one rate does not shift another's outcomes.
    empty, long, non_ascii = (rng.random() < rates[k] for k in ("empty", "long", "unicode"))
    target_words = rng.randint(*LONG_WORDS)
    form = rng.choice(UNICODE_FORMS)
    if empty:
        return ""
    if long:
        content = _ramble(content, story, target_words, rng)
    if non_ascii:
        content = form.format(content)
    return content


def _ramble(content: str, story: str, target_words: int, rng: random.Random) -> str:
    """The answer, then the story retold from a random sentence on (round again, as a
    model caught in a loop repeats itself) until about `target_words` words."""
    pieces = sentences(story) or [content]
    start = rng.randrange(len(pieces))
    said = [content]
    words = approx_tokens(content)
    position = start
    while words < target_words:
        piece = pieces[position % len(pieces)]
        said.append(piece)
        words += max(1, approx_tokens(piece))
        position += 1
    return " ".join(said)


def generation_s(content: str, max_tokens: int | None, ms_per_token: float) -> float:
    """Time to generate `content`'s tokens, as many as the max_tokens cut leaves."""
    tokens = approx_tokens(content)
    if max_tokens is not None:
        tokens = min(tokens, max_tokens)
    return tokens * ms_per_token / 1000.0
