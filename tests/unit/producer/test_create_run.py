"""The rows a run starts with, and the order its items are sent in."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.schema.models import Item, Story
from evalfleet.schema.payloads import RunConfig

STORIES = {
    f"s{i}": ("wikipedia", f"Story {i}.", [(f"Question {t}?", "yes") for t in range(1, 3)])
    for i in range(3)
}


def test_items_go_story_by_story_with_the_models_side_by_side(tmp_path: Path) -> None:
    # enqueue_pending sends in id order: every model's pool has work from the start, and a
    # run stopped halfway holds paired answers for the stories done.
    _url, sessions = database(tmp_path)
    config = RunConfig(models={"base": "m1", "finetuned": "m2"})
    run_id = create_run(sessions, tiny_dataset(STORIES), config)
    with sessions() as session:
        rows = session.execute(
            select(Story.key, Item.model_label)
            .join(Story, Story.id == Item.story_id)
            .where(Item.run_id == run_id)
            .order_by(Item.id)
        ).all()
    assert [tuple(row) for row in rows] == [
        (key, label) for key in STORIES for label in ("base", "finetuned")
    ]


def test_a_sampled_run_has_one_item_per_sample_side_by_side_with_the_models(
    tmp_path: Path,
) -> None:
    # Given a run asking each question 3 times
    _url, sessions = database(tmp_path)
    config = RunConfig(models={"base": "m1", "finetuned": "m2"}, temperature=0.7, samples=3)
    run_id = create_run(sessions, tiny_dataset(STORIES), config)
    with sessions() as session:
        rows = session.execute(
            select(Story.key, Item.model_label, Item.sample)
            .join(Story, Story.id == Item.story_id)
            .where(Item.run_id == run_id)
            .order_by(Item.id)
        ).all()
    # Then its items go story by story, each model's 3 samples side by side
    assert [tuple(row) for row in rows] == [
        (key, label, k) for key in STORIES for label in ("base", "finetuned") for k in range(3)
    ]
