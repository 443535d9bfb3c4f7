"""What Flower and the workers' logs show for a task (Celery's `argsrepr`): the run, the
model's label and the story, where Celery would show `[18]`. Only the message's display
header carries them; its arguments stay ids (docs/architecture.md, D1 and D9), and the label
holds no story text, model name or secret."""

from __future__ import annotations

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


def answer_item_labels(session: Session, run_id: int) -> dict[int, str]:
    """The label of every item of the run, by item id (one query)."""
    rows = session.execute(
        select(Item.id, Item.model_label, Story.key)
        .join(Story, Story.id == Item.story_id)
        .where(Item.run_id == run_id)
    )
    return {item_id: answer_item_label(run_id, label, key, item_id) for item_id, label, key in rows}


def aggregate_run_label(run_id: int) -> str:
    return f"run {run_id} aggregation"
