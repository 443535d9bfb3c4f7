"""The batch lines of one model of a run, read from SQL: every question of its open items
that has no stored answer, asked as the synchronous path asks it (same messages, same
parameters, same cache key), so the two modes answer and cache alike."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from evalfleet.schema.models import OPEN_ITEM_STATES, Answer, Item, Question, Story
from evalfleet.schema.payloads import RunConfig
from evalfleet.workers import cache
from evalfleet.workers.batch.lines import BatchLine, custom_id
from evalfleet.workers.prompts import build_messages


def open_lines(
    session: Session,
    run_id: int,
    label: str,
    config: RunConfig,
    only: Collection[str] | None = None,
    closed_too: bool = False,
) -> list[BatchLine]:
    """Lines for the unanswered questions of `label`'s open items (only those named in
    `only`, when given), in item and turn order. `closed_too`, for a finished batch's own
    lines: whatever their item's state, so an item failed meanwhile by another batch's
    exhausted lines keeps the answers this batch brought, as a synchronous item keeps the
    turns it answered before failing."""
    model = config.models[label]
    which = [Item.run_id == run_id, Item.model_label == label]
    if not closed_too:
        which.append(Item.state.in_(OPEN_ITEM_STATES))
    items = session.execute(
        select(Item.id, Item.story_id, Story.text)
        .join(Story, Story.id == Item.story_id)
        .where(*which)
        .order_by(Item.id)
    ).all()
    story_ids = [story_id for _, story_id, _ in items]
    questions: dict[int, list[tuple[int, str, tuple[str, ...]]]] = {}
    for story_id, turn, text, references in session.execute(
        select(Question.story_id, Question.turn, Question.text, Question.references)
        .where(Question.story_id.in_(story_ids))
        .order_by(Question.story_id, Question.turn)
    ):
        questions.setdefault(story_id, []).append((turn, text, tuple(references)))
    answered = {
        (story_id, turn)
        for story_id, turn in session.execute(
            select(Answer.story_id, Answer.turn).where(
                Answer.run_id == run_id, Answer.model_label == label
            )
        )
    }
    wanted = set(only) if only is not None else None
    lines = []
    for item_id, story_id, story_text in items:
        story_questions = questions.get(story_id, [])
        for turn, _, _ in story_questions:
            name = custom_id(run_id, item_id, turn)
            if (story_id, turn) in answered or (wanted is not None and name not in wanted):
                continue
            messages = build_messages(story_text, story_questions, turn, config.history)
            body: dict[str, object] = {
                "model": model, "messages": messages,
                "temperature": config.temperature, "max_tokens": config.max_tokens,
            }  # fmt: skip
            if config.seed is not None:
                body["seed"] = config.seed
            key = (
                cache.cache_key(config.base_url, model, messages, config.generation_params())
                if config.cache
                else None
            )
            lines.append(BatchLine(name, item_id, story_id, turn, body, key))
    return lines
