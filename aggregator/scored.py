"""Every (model, question, sample) of a run with its stored answer and its score, read from
SQL; aggregator/samples.py collapses the samples to one mean per (model, question)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from sqlalchemy import select
from sqlalchemy.orm import Session

from evalfleet.aggregator.no_answer import score_answer
from evalfleet.schema.models import (
    Answer,
    Item,
    ItemState,
    Judgement,
    JudgeVerdict,
    Question,
    Run,
    Story,
)
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
    # The judge metric (RunConfig.judge): 1.0 graded correct, 0.0 incorrect or not attempted;
    # None when not judged (no judge, no judgement yet, or one the judge could not grade:
    # never scored as wrong, docs/architecture.md D6). A plain number, averaged like em/f1.
    judge: float | None = None
    verdict: str | None = None  # a JudgeVerdict; None when not judged
    judge_reason: str | None = None  # the judge's one line
    judged_by_rule: bool = False  # EM = 1: graded correct by the cascade, no judge call
    judge_error: str | None = None  # why the judge could not grade the answer


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
    judgements = _judgements(session, run_id, config)
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
            graded = judgements.get((label, story_id, turn, sample)) if text is not None else None
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
                    judge=graded.judge if graded else None,
                    verdict=graded.verdict if graded else None,
                    judge_reason=graded.reason if graded else None,
                    judged_by_rule=graded.by_rule if graded else False,
                    judge_error=graded.error if graded else None,
                )
            )
    return scored


# What a grade by the cascade says for itself: its row holds no reason of the judge's.
BY_RULE_REASON = "EM = 1: correct by rule, no judge call"


@dataclass(frozen=True)
class _Graded:
    judge: float | None
    verdict: str | None
    reason: str | None
    by_rule: bool
    error: str | None


def _judgements(
    session: Session, run_id: int, config: RunConfig
) -> dict[tuple[str, int, int, int], _Graded]:
    """The run's judge's grades, as ScoredTurn fields by (label, story id, turn, sample); none when
    the run has no judge. A judgement without a verdict (the judge failed) is not judged."""
    if config.judge is None:
        return {}
    rows = session.execute(
        select(
            Judgement.model_label, Judgement.story_id, Judgement.turn, Judgement.sample,
            Judgement.verdict, Judgement.reason, Judgement.by_rule, Judgement.error,
        ).where(Judgement.run_id == run_id, Judgement.judge == config.judge.model)
    )  # fmt: skip
    graded: dict[tuple[str, int, int, int], _Graded] = {}
    for label, story_id, turn, sample, verdict, reason, by_rule, error in rows:
        judged = verdict is not None and error is None
        graded[(label, story_id, turn, sample)] = _Graded(
            judge=(1.0 if verdict == JudgeVerdict.CORRECT.value else 0.0) if judged else None,
            verdict=verdict if judged else None,
            reason=(reason or (BY_RULE_REASON if by_rule else None)) if judged else None,
            by_rule=bool(by_rule) and judged,
            error=None if judged else error or "the judge gave no verdict",
        )
    return graded
