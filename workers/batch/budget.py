"""`--budget` in batch mode (docs/architecture.md, D10): a batch is paid for once it is
submitted, so the budget is checked before, on what its lines may cost at most. Stories are
taken in order, every model of a story together (paired answers, as a synchronous run
stopped by its budget has), while their lines' ceiling fits what the budget has left; the
items of the stories after that fail as not submitted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from evalfleet.schema.pricing import cost_usd
from evalfleet.workers.batch.lines import BatchLine


def line_ceiling(line: BatchLine, price: tuple[float, float] | None) -> float:
    """The most a line may cost: its prompt at about 4 characters a token (the estimate the
    synchronous limiter uses, workers/requesting.py) and an answer of max_tokens."""
    messages = line.body["messages"]
    assert isinstance(messages, list)
    prompt = sum(len(str(m["content"])) for m in messages) // 4
    max_tokens = line.body["max_tokens"]
    assert isinstance(max_tokens, int)
    return cost_usd(price, prompt, max_tokens) or 0.0


@dataclass(frozen=True)
class Fit:
    """The stories left out, and what the lines taken may cost at most."""

    refused: frozenset[int]
    ceiling_usd: float  # of the stories taken
    refused_usd: float  # the ceiling of the first story left out (0 when all fit)


def fit_budget(
    lines: Mapping[str, Iterable[BatchLine]],
    prices: Mapping[str, tuple[float, float] | None],
    remaining_usd: float,
) -> Fit:
    """The longest run of stories, in story order, whose lines (`lines` per model label)
    cost at most `remaining_usd` together; the stories after it are refused."""
    per_story: dict[int, float] = {}
    for label, model_lines in lines.items():
        for line in model_lines:
            ceiling = line_ceiling(line, prices.get(label))
            per_story[line.story_id] = per_story.get(line.story_id, 0.0) + ceiling
    stories = sorted(per_story)
    total = 0.0
    for position, story_id in enumerate(stories):
        if total + per_story[story_id] > remaining_usd:
            return Fit(frozenset(stories[position:]), total, per_story[story_id])
        total += per_story[story_id]
    return Fit(frozenset(), total, 0.0)


def refusal(budget_usd: float, spent_usd: float, fit: Fit) -> str:
    """The reason an item left out by the budget fails with."""
    left = budget_usd - spent_usd - fit.ceiling_usd
    return (
        f"budget of ${budget_usd:g}: not submitted (its story's batch requests may cost up "
        f"to ${fit.refused_usd:.4f}, ${max(left, 0.0):.4f} left after ${spent_usd:.4f} spent "
        f"and ${fit.ceiling_usd:.4f} submitted)"
    )
