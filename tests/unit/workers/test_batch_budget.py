"""`--budget` in batch mode (workers/batch/budget.py): the stories whose batch lines may
cost more than the budget has left are not submitted, later stories first, both models of a
story together."""

from __future__ import annotations

import pytest

from evalfleet.workers.batch.budget import fit_budget, line_ceiling, refusal
from evalfleet.workers.batch.lines import BatchLine

PRICE = (1_000_000.0, 1_000_000.0)  # a dollar a token: ceilings are token counts


def line(story_id: int, turn: int, prompt: str, max_tokens: int = 10) -> BatchLine:
    body: dict[str, object] = {
        "model": "m", "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
    }  # fmt: skip
    return BatchLine(f"run1-item{story_id}-turn{turn}", story_id, story_id, turn, body, None)


def test_a_line_may_cost_its_prompt_at_four_characters_a_token_and_max_tokens_of_answer() -> None:
    # Given a prompt of 40 characters and max_tokens 10
    # Then the line may cost 10 + 10 tokens
    assert line_ceiling(line(1, 1, "x" * 40), PRICE) == pytest.approx(20.0)
    # And a model without a price costs nothing that can be counted
    assert line_ceiling(line(1, 1, "x" * 40), None) == 0.0


def test_stories_are_taken_in_order_with_every_model_until_the_budget_is_reached() -> None:
    # Given three stories of two models, each line at most 20 dollars (80 per story)
    lines = {
        label: [line(s, t, "x" * 40) for s in (3, 1, 2) for t in (1, 2)]
        for label in ("base", "finetuned")
    }
    prices = {"base": PRICE, "finetuned": PRICE}
    # When 170 dollars are left
    fit = fit_budget(lines, prices, 170.0)
    # Then stories 1 and 2 fit with both models, and story 3 is left out
    assert fit.refused == {3}
    assert (fit.ceiling_usd, fit.refused_usd) == (pytest.approx(160.0), pytest.approx(80.0))
    # And its reason says what was left and what it may have cost
    assert refusal(200.0, 30.0, fit) == (
        "budget of $200: not submitted (its story's batch requests may cost up to $80.0000, "
        "$10.0000 left after $30.0000 spent and $160.0000 submitted)"
    )
    # And with enough left, nothing is refused; with nothing left, everything is
    assert fit_budget(lines, prices, 240.0).refused == set()
    assert fit_budget(lines, prices, 0.0).refused == {1, 2, 3}
