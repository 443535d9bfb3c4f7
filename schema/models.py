"""The SQL schema: the database is the source of truth for runs, items and answers."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every datetime evalfleet stores is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class RunState(StrEnum):
    RUNNING = "running"  # items are being answered
    AGGREGATING = "aggregating"  # every item ended; the aggregator has been claimed
    DONE = "done"  # results are written
    FAILED = "failed"  # stopped early (configuration error such as a bad API key)


class ItemState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    BATCHED = "batched"  # its questions wait in a provider batch (docs/architecture.md, D10)
    DONE = "done"
    FAILED = "failed"


OPEN_ITEM_STATES = (ItemState.PENDING.value, ItemState.RUNNING.value, ItemState.BATCHED.value)
# One answer per (run, model, story, turn, sample): the unique key every answer write upserts
# on; `sample` is 0 unless the run asks each question several times (--samples).
ANSWER_KEY = ("run_id", "model_label", "story_id", "turn", "sample")


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=RunState.RUNNING.value)
    # Models keyed by label, history mode, generation parameters, base URL: never the API key.
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    dataset_name: Mapped[str] = mapped_column(Text)
    dataset_split: Mapped[str] = mapped_column(String(64))
    dataset_fingerprint: Mapped[str] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    aggregations: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Story(Base):
    __tablename__ = "stories"
    __table_args__ = (UniqueConstraint("run_id", "key", name="uq_story_run_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (UniqueConstraint("story_id", "turn", name="uq_question_story_turn"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    turn: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    references: Mapped[list[str]] = mapped_column(JSON)


class Item(Base):
    """One unit of work: one model over one story, one of its samples (0 unless --samples)."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint(
            "run_id", "model_label", "story_id", "sample", name="uq_item_run_model_story_sample"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    model_label: Mapped[str] = mapped_column(String(64))
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    sample: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    state: Mapped[str] = mapped_column(String(16), default=ItemState.PENDING.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)  # requests sent, retries included
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)  # of which answered 429
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The delivery working on the item holds it until then (renewed with every stored answer);
    # a duplicate delivery waits for the lease to end instead of paying for the same turns.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Answer(Base):
    """One model's answer to one turn; `error` is set (and `text` null) when the turn failed."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint(*ANSWER_KEY, name="uq_answer_run_model_story_turn_sample"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    model_label: Mapped[str] = mapped_column(String(64))
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    turn: Mapped[int] = mapped_column(Integer)
    sample: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    text: Mapped[str | None] = mapped_column(Text, default=None)
    finish_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)  # served from the cache
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JudgeVerdict(StrEnum):
    """A judge's grade of one answer against the question, the story and the references."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    NOT_ATTEMPTED = "not_attempted"  # the answer declines, or says the story does not tell


# One judgement per answer and judge: the unique key every judgement write upserts on.
JUDGEMENT_KEY = ("run_id", "model_label", "story_id", "turn", "sample", "judge")


class Judgement(Base):
    """The judge model's grade of one stored answer (issue 14's judge metric). An answer
    with EM = 1 is graded correct by the rule (`by_rule`), with no call; `error` is set and
    `verdict` null when the judge could not grade it, which is never scored as wrong."""

    __tablename__ = "judgements"
    __table_args__ = (UniqueConstraint(*JUDGEMENT_KEY, name="uq_judgement_answer_judge"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    model_label: Mapped[str] = mapped_column(String(64))  # the judged model's label
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    turn: Mapped[int] = mapped_column(Integer)
    sample: Mapped[int] = mapped_column(Integer, default=0)  # which of the answer's samples
    judge: Mapped[str] = mapped_column(Text)  # the judge model's name
    verdict: Mapped[str | None] = mapped_column(String(16), default=None)  # a JudgeVerdict
    reason: Mapped[str | None] = mapped_column(Text, default=None)  # the judge's one line
    by_rule: Mapped[bool] = mapped_column(Boolean, default=False)  # EM = 1: no call made
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CachedResponse(Base):
    """A response kept by the hash of everything that determines it: base URL, model,
    messages and generation parameters; a second identical run pays nothing."""

    __tablename__ = "response_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BatchState(StrEnum):
    SUBMITTING = "submitting"  # the row is recorded; the file or the batch may not exist yet
    SUBMITTED = "submitted"  # the provider has the batch (provider_id)
    DONE = "done"  # its output and error files were stored, once
    FAILED = "failed"  # the provider refused or lost it; its requests went to a new batch


OPEN_BATCH_STATES = (BatchState.SUBMITTING.value, BatchState.SUBMITTED.value)


class Batch(Base):
    """One provider batch of one model's requests (docs/architecture.md, D10): recorded before
    its upload, so a killed submitter or poller resumes it instead of submitting it twice."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("run_id", "model_label", "key", name="uq_batch_run_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    model_label: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))  # "p0", "p1"; a retry of p0: "p0r0", ...
    round: Mapped[int] = mapped_column(Integer, default=1)  # 1, then 2 for its retry...
    state: Mapped[str] = mapped_column(String(16), default=BatchState.SUBMITTING.value)
    custom_ids: Mapped[list[str]] = mapped_column(JSON)
    input_file_id: Mapped[str | None] = mapped_column(Text, default=None)
    provider_id: Mapped[str | None] = mapped_column(Text, default=None)
    provider_status: Mapped[str | None] = mapped_column(String(32), default=None)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0-100, as the provider says
    answered: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)  # lines that came back errors
    error: Mapped[str | None] = mapped_column(Text, default=None)
    poller: Mapped[str | None] = mapped_column(String(32), default=None)
    poll_lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Result(Base):
    """Scores of one model on one domain ("overall" for all), on the official 0-100 scale."""

    __tablename__ = "results"
    __table_args__ = (
        UniqueConstraint("run_id", "model_label", "domain", name="uq_result_run_model_domain"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    model_label: Mapped[str] = mapped_column(String(64))
    domain: Mapped[str] = mapped_column(Text)
    questions: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    scored: Mapped[int] = mapped_column(Integer)  # answered by every model of the run
    em: Mapped[float | None] = mapped_column(Float, default=None)
    f1: Mapped[float | None] = mapped_column(Float, default=None)
    # The judge's accuracy (share graded correct, 0-100); None: the run has no judge.
    judge: Mapped[float | None] = mapped_column(Float, default=None)


class StoredAnalysis(Base):
    """What the aggregation computed once for every report of a run: the paired comparisons,
    the HasAns/NoAns split and the diagnostics, as JSON text (aggregator/analysis.py). A
    report of a done run reads it instead of loading and scoring every answer again."""

    __tablename__ = "analyses"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)  # of the document's format; others are ignored
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
