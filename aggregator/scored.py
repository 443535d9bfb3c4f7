"""Every (model, question, sample) of a run with its stored answer and its score, read from
SQL; aggregator/samples.py collapses the samples to one mean per (model, question)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from sqlalchemy import select
from sqlalchemy.orm import Session

from evalfleet.aggregator.no_answer import score_answer
from evalfleet.schema.models import Answer, Item, ItemState, Question, Run, Story
from evalfleet.schema.payloads import RunConfig


@dataclass(frozen=True)
class ScoredTurn:
    label: str
    model: str
    story_key: str
    story_id: int
    source: str
    turn: int
    question: str
    references: tuple[str, ...]  # none: the story does not answer the question
    answer: str | None  # None: not answered (failed, or not yet)
    error: str | None  # why it failed for good; None while it may still be answered
    em: float | None  # 0..1; None when there is no answer to score
    f1: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None
    # As the endpoint sent it ("stop", "length": cut at max_tokens); None when not answered.
    finish_reason: str | None = None
    sample: int = 0  # which of the question's samples (--samples); 0 when asked once


def load_scored_turns(session: Session, run_id: int) -> list[ScoredTurn]:
    """One entry per model, question and sample of the run, in story and turn order (the
    samples of a question side by side)."""
    # Columns, not ORM objects: this reads every answer of the run (the aggregation and
    # every report), and building an object per row cost as much as the scoring.
    run = session.get_one(Run, run_id)
    config = RunConfig.model_validate(run.config)
    rows = session.execute(
        select(Story.id, Story.key, Story.source, Question.turn, Question.text, Question.references)
        .join(Question, Question.story_id == Story.id)
        .where(Story.run_id == run_id)
        .order_by(Story.position, Question.turn)
    ).all()
    answers = {
        (a.model_label, a.story_id, a.turn, a.sample): a
        for a in session.execute(
            select(
                Answer.model_label, Answer.story_id, Answer.turn, Answer.sample, Answer.text,
                Answer.error, Answer.prompt_tokens, Answer.completion_tokens, Answer.latency_ms,
                Answer.finish_reason,
            ).where(Answer.run_id == run_id)
        )
    }  # fmt: skip
    # Only a failed item's error marks its unanswered turns failed: a pending item keeps the
    # reason of its last retry, but its turns are still to come.
    item_errors = {
        (label, story_id, sample): error
        for label, story_id, sample, error in session.execute(
            select(Item.model_label, Item.story_id, Item.sample, Item.last_error).where(
                Item.run_id == run_id, Item.state == ItemState.FAILED.value
            )
        )
    }
    scored: list[ScoredTurn] = []
    for label, model in config.models.items():
        for (story_id, story_key, source, turn, question, references), sample in product(
            rows, range(config.samples)
        ):
            answer = answers.get((label, story_id, turn, sample))
            text = answer.text if answer is not None else None
            score = score_answer(references, text) if text is not None else None
            error = (
                answer.error if answer is not None else item_errors.get((label, story_id, sample))
            )
            scored.append(
                ScoredTurn(
                    label=label,
                    model=model,
                    story_key=story_key,
                    story_id=story_id,
                    source=source,
                    turn=turn,
                    question=question,
                    references=tuple(references),
                    answer=text,
                    error=None if text is not None else error,
                    em=score.em if score else None,
                    f1=score.f1 if score else None,
                    prompt_tokens=answer.prompt_tokens if answer is not None else None,
                    completion_tokens=answer.completion_tokens if answer is not None else None,
                    latency_ms=answer.latency_ms if answer is not None else None,
                    finish_reason=answer.finish_reason if answer is not None else None,
                    sample=sample,
                )
            )
    return scored
