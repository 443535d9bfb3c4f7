"""Runs with answers but without a cluster: a SQLite database, a run made by the producer, and
answers written straight into `answers` (from the simulator's reader, or given by hand), then
the real aggregator. Shared by the aggregator, CLI and HTML report tests:
`from unit.aggregator.simulated_run import ...` (tests/ is on sys.path through its conftest)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.aggregator.aggregate import aggregate_run
from evalfleet.producer.create_run import create_run
from evalfleet.producer.dataset import Dataset, Question, Story
from evalfleet.schema import models as db
from evalfleet.schema.db import make_engine, make_sessionmaker, session_scope
from evalfleet.schema.migrate import upgrade
from evalfleet.schema.models import Answer, Item, ItemState, Run, RunState
from evalfleet.schema.payloads import HistoryMode, JudgeConfig, RunConfig
from evalfleet.simulator.config import DEFAULT_MODELS, DEMO_MODELS
from evalfleet.simulator.conversation import greedy_rng, parse_messages, sampling_rng
from evalfleet.simulator.reader import answer
from evalfleet.workers.prompts import build_messages

AnswerKey = tuple[str, str, int]  # (label, story key, turn)
FAILED = None  # an answer given as FAILED is stored as a failed turn


def database(tmp_path: Path) -> tuple[str, sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'evalfleet.db'}"
    upgrade(url)
    return url, make_sessionmaker(make_engine(url))


def tiny_dataset(stories: Mapping[str, tuple[str, str, list[tuple[str, str]]]]) -> Dataset:
    """A data set from {key: (source, text, [(question, reference), ...])}."""
    return Dataset(
        name="tiny.jsonl",
        split="validation",
        stories=tuple(
            Story(key, source, text, tuple(
                Question(turn, q, (ref,)) for turn, (q, ref) in enumerate(turns, start=1)
            ))
            for key, (source, text, turns) in stories.items()
        ),
    )  # fmt: skip


def simulated_answers(
    dataset: Dataset, models: Mapping[str, str], temperature: float = 0.0, seed: int | None = None
) -> dict[AnswerKey, str | None]:
    """What the simulator's server would answer, from its reader called directly."""
    answers: dict[AnswerKey, str | None] = {}
    for label, model in models.items():
        for story in dataset.stories:
            questions = [(q.turn, q.text, q.references) for q in story.questions]
            for q in story.questions:
                messages = build_messages(story.text, questions, q.turn, HistoryMode.GOLD)
                c = parse_messages(messages)
                answers[(label, story.key, q.turn)] = answer(
                    DEFAULT_MODELS[model], c.story, c.question, greedy_rng(model, messages),
                    temperature, history=c.history,
                    sampling_rng=sampling_rng(model, messages, seed, temperature),
                )  # fmt: skip
    return answers


def finished_run(
    sessions: sessionmaker[Session],
    dataset: Dataset,
    models: Mapping[str, str],
    answers: Mapping[AnswerKey, str | None],
    *,
    temperature: float = 0.0,
    seed: int | None = None,
    judge: str | None = None,
    verdicts: Mapping[AnswerKey, str | None] | None = None,
) -> int:
    """A run as the cluster would leave it: answers stored, items ended, results aggregated.
    A question missing from `answers` is left unanswered; one given as FAILED failed. With a
    `judge`, `verdicts` are its judgements (None: the judge failed on that answer)."""
    config = RunConfig(
        models=dict(models), temperature=temperature, seed=seed,
        judge=None if judge is None else JudgeConfig(model=judge),
    )  # fmt: skip
    run_id = create_run(sessions, dataset, config)
    with session_scope(sessions) as session:
        rows = session.execute(select(db.Story.key, db.Story.id).where(db.Story.run_id == run_id))
        story_ids = {row.key: row.id for row in rows}
        for (label, story_key, turn), text in answers.items():
            session.add(
                Answer(
                    run_id=run_id, model_label=label, story_id=story_ids[story_key], turn=turn,
                    text=text, error="HTTP 503: overloaded" if text is FAILED else None,
                    prompt_tokens=100, completion_tokens=len((text or "").split()),
                    latency_ms=200.0,
                )
            )  # fmt: skip
        for (label, story_key, turn), verdict in (verdicts or {}).items():
            assert judge is not None
            session.add(judgement(run_id, label, story_ids[story_key], turn, judge, verdict))
        session.execute(
            update(Item).where(Item.run_id == run_id).values(state=ItemState.DONE.value)
        )
        session.execute(
            update(Run).where(Run.id == run_id).values(state=RunState.AGGREGATING.value)
        )
    assert aggregate_run(sessions, run_id)
    return run_id


def judgement(
    run_id: int, label: str, story_id: int, turn: int, judge: str, verdict: str | None
) -> db.Judgement:
    """A judgement row as the judge's worker writes it: "by rule" for a grade written as
    "rule" (correct, no call), an error for None, else one call of 40 + 8 tokens."""
    by_rule = verdict == "rule"
    return db.Judgement(
        run_id=run_id, model_label=label, story_id=story_id, turn=turn, judge=judge,
        verdict="correct" if by_rule else verdict, by_rule=by_rule,
        reason=None if verdict is None or by_rule else f"{verdict}: reason for turn {turn}",
        error="HTTP 500: judge down" if verdict is None else None,
        prompt_tokens=None if by_rule else 40, completion_tokens=None if by_rule else 8,
    )  # fmt: skip


MARKUP_QUESTION = '<script>alert("owned")</script> Who is <b>Cotton</b>?'


SIM_JUDGE = "evalfleet/sim-judge"
# The judge's grades of three_story_run's answers (EM = 1 answers "rule"): base's wordy but
# right answers judged correct, one failed judgement (finetuned s3 turn 2).
THREE_STORY_VERDICTS: dict[AnswerKey, str | None] = {
    ("base", "s1", 1): "correct", ("base", "s1", 2): "rule", ("base", "s2", 1): "correct",
    ("base", "s2", 2): "rule", ("base", "s3", 1): "incorrect",
    ("finetuned", "s1", 1): "rule", ("finetuned", "s1", 2): "correct",
    ("finetuned", "s2", 1): "rule", ("finetuned", "s2", 2): "correct",
    ("finetuned", "s3", 1): "rule", ("finetuned", "s3", 2): None,
}  # fmt: skip


def three_story_run(
    sessions: sessionmaker[Session], name: str = "tiny.jsonl", judged: bool = False
) -> int:
    """Three stories of two turns, answered by hand; one question holds markup. `judged`:
    graded by SIM_JUDGE with THREE_STORY_VERDICTS."""
    stories = {
        "s1": ("mctest", "Cotton was a white kitten. She lived in a barn.",
               [(MARKUP_QUESTION, "a white kitten"), ("Where did she live?", "in a barn")]),
        "s2": ("cnn", "The mayor opened the bridge on Monday. It cost $3 million.",
               [("Who opened the bridge?", "the mayor"), ("When?", "Monday")]),
        "s3": ("cnn", "Asta found a bottle. It held a note from a little girl.",
               [("What did Asta find?", "a bottle"), ("Who wrote the note?", "a little girl")]),
    }  # fmt: skip
    dataset = tiny_dataset(stories)
    dataset = Dataset(name=name, split=dataset.split, stories=dataset.stories)
    answers: dict[AnswerKey, str | None] = {
        ("base", "s1", 1): "Cotton was a white kitten.",
        ("base", "s1", 2): "in a barn",
        ("base", "s2", 1): "The mayor opened the bridge on Monday.",
        ("base", "s2", 2): "Monday",
        ("base", "s3", 1): "a note",
        ("base", "s3", 2): FAILED,
        ("finetuned", "s1", 1): "a white kitten",
        ("finetuned", "s1", 2): "barn",
        ("finetuned", "s2", 1): "the mayor",
        ("finetuned", "s2", 2): "on Monday",
        ("finetuned", "s3", 1): "a bottle",
        ("finetuned", "s3", 2): "a girl",
    }
    models = DEMO_MODELS
    if judged:
        return finished_run(
            sessions, dataset, models, answers, judge=SIM_JUDGE, verdicts=THREE_STORY_VERDICTS
        )
    return finished_run(sessions, dataset, models, answers)
