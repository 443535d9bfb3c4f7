"""The run's usage: the judge's tokens and dollars are counted once, from its own judgements
only, in the judge's line and in the budget's spending alike."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update
from unit.aggregator.simulated_run import database, judgement, three_story_run

from evalfleet.schema.accounting import judge_usage, spent_usd
from evalfleet.schema.models import Run, Story
from evalfleet.schema.payloads import RunConfig


def test_another_judges_rows_count_neither_in_the_judge_usage_nor_in_the_spending(
    tmp_path: Path,
) -> None:
    # Given the judged run, its judge priced at $1 in, $2 out per 1M tokens, the models unpriced
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions, judged=True)
    with sessions.begin() as session:
        run = session.get_one(Run, run_id)
        prices = {"judge": [1.0, 2.0]}
        session.execute(
            update(Run).where(Run.id == run_id).values(config=dict(run.config) | {"prices": prices})
        )
    # And every answer of story s1 graded again by another judge, one call each
    with sessions.begin() as session:
        story_id = session.scalar(select(Story.id).where(Story.run_id == run_id, Story.key == "s1"))
        assert story_id is not None
        for label in ("base", "finetuned"):
            for turn in (1, 2):
                session.add(judgement(run_id, label, story_id, turn, "other/judge", "correct"))
    # When the judge's usage and the run's spending are read
    with sessions() as session:
        config = RunConfig.model_validate(session.get_one(Run, run_id).config)
        usage = judge_usage(session, run_id, config)
        spent = spent_usd(session, run_id, config)
    # Then both count the run's judge's 6 calls of 40 + 8 tokens, none of the other's 4
    assert usage is not None
    assert (usage.judgements, usage.calls) == (11, 6)
    assert (usage.prompt_tokens, usage.completion_tokens) == (240, 48)
    assert usage.cost_usd == spent == (240 * 1.0 + 48 * 2.0) / 1e6
