"""Write a run and all its rows in one transaction; only then may its messages be sent."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.producer.dataset import Dataset
from evalfleet.schema.db import insert_rows, session_scope
from evalfleet.schema.models import Item, Question, Run, Story
from evalfleet.schema.payloads import RunConfig

logger = logging.getLogger(__name__)


def create_run(sessions: sessionmaker[Session], dataset: Dataset, config: RunConfig) -> int:
    """The run, its stories with every gold reference, and one pending item per (model, story,
    sample)."""
    with session_scope(sessions) as session:
        run = Run(
            config=config.model_dump(mode="json"),
            dataset_name=dataset.name,
            dataset_split=dataset.split,
            dataset_fingerprint=dataset.fingerprint,
        )
        session.add(run)
        session.flush()
        insert_rows(
            session,
            Story.__table__,
            [
                {
                    "run_id": run.id,
                    "key": story.key,
                    "position": position,
                    "source": story.source,
                    "text": story.text,
                }
                for position, story in enumerate(dataset.stories)
            ],
        )
        rows = session.execute(select(Story.key, Story.id).where(Story.run_id == run.id))
        story_ids = {row.key: row.id for row in rows}
        insert_rows(
            session,
            Question.__table__,
            [
                {
                    "story_id": story_ids[story.key],
                    "turn": q.turn,
                    "text": q.text,
                    "references": list(q.references),
                }
                for story in dataset.stories
                for q in story.questions
            ],
        )
        # Story by story, the models (and each model's samples) side by side: items are sent
        # in id order, so every model's API pool has work from the first second, and the
        # paired comparison of the stories done so far grows evenly, all samples included.
        insert_rows(
            session,
            Item.__table__,
            [
                {
                    "run_id": run.id,
                    "model_label": label,
                    "story_id": story_ids[story.key],
                    "sample": sample,
                }
                for story in dataset.stories
                for label in config.models
                for sample in range(config.samples)
            ],
        )
        run_id = run.id
    logger.info(
        "run %s: %s stories, %s questions, %s models, %s samples",
        run_id, len(dataset.stories), dataset.question_count, len(config.models), config.samples,
    )  # fmt: skip
    return run_id
