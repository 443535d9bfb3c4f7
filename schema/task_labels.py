"""What Flower and the workers' logs show for a task (Celery's `argsrepr`): the run, the
model's label and the story, where Celery would show `[18]`. Only the message's display
header carries them; its arguments stay ids (docs/architecture.md, D1 and D9), and the label
holds no story text, model name or secret."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from evalfleet.schema.models import Item, Story

# A story key is the data set's id or index; a SQuAD key holds an article title, kept short.
MAX_STORY_KEY = 60


def answer_item_label(run_id: int, model_label: str, story_key: str, item_id: int) -> str:
    """e.g. "run 3 base story 5 item 18" (the item id matches the workers' log lines)."""
    if len(story_key) > MAX_STORY_KEY:
        story_key = story_key[: MAX_STORY_KEY - 3] + "..."
    return f"run {run_id} {model_label} story {story_key} item {item_id}"


def answer_item_labels(
    session: Session, run_id: int | None, item_ids: Collection[int] | None = None
) -> dict[int, str]:
    """The label of every item of the run (None: of any run), or only of `item_ids`, by
    item id (one query)."""
    query = select(Item.run_id, Item.id, Item.model_label, Story.key).join(
        Story, Story.id == Item.story_id
    )
    if run_id is not None:
        query = query.where(Item.run_id == run_id)
    if item_ids is not None:
        query = query.where(Item.id.in_(item_ids))
    return {
        item_id: answer_item_label(run, label, key, item_id)
        for run, item_id, label, key in session.execute(query)
    }


def answer_items_label(labels: Iterable[str]) -> str:
    """A message of several items (tasks.answer_items): their labels, e.g. "run 3 base story
    5 item 18; run 3 finetuned story 5 item 19"."""
    return "; ".join(labels)


def aggregate_run_label(run_id: int) -> str:
    return f"run {run_id} aggregation"
