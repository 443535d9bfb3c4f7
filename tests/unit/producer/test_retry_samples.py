"""`evalfleet retry` on a sampled run: only the sample whose question failed is reset, and
only its failed answer is asked again."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.producer.retry import reset_failed
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import Answer, Item, ItemState, Run, RunState, utcnow
from evalfleet.schema.payloads import RunConfig

STORIES = {"s0": ("wikipedia", "Tom had a cat.", [("Who had a cat?", "Tom")])}


def test_retry_resets_only_the_sample_whose_question_failed(tmp_path: Path) -> None:
    # Given a finished run of 3 samples where sample 1's only question failed with a 400
    _url, sessions = database(tmp_path)
    config = RunConfig(models={"base": "org/base"}, temperature=0.7, samples=3)
    run_id = create_run(sessions, tiny_dataset(STORIES), config)
    with session_scope(sessions) as session:
        story_id = session.scalars(select(Item.story_id)).first()
        for k in range(3):
            failed = k == 1
            session.add(Answer(run_id=run_id, model_label="base", story_id=story_id, turn=1,
                               sample=k, text=None if failed else "Tom",
                               error="HTTP 400" if failed else None,
                               created_at=utcnow()))  # fmt: skip
        session.execute(update(Item).values(state=ItemState.DONE.value))
        session.execute(update(Run).values(state=RunState.DONE.value))
    # When the run is retried
    reset = reset_failed(sessions, run_id)
    # Then only sample 1's item is pending again, and only its failed answer is gone
    with sessions() as session:
        states = dict(session.execute(select(Item.sample, Item.state)).all())
        kept = list(session.scalars(select(Answer.sample).order_by(Answer.sample)))
    assert reset == 1
    assert states == {0: "done", 1: "pending", 2: "done"}
    assert kept == [0, 2]
