"""The SQL counts are the counts of the loaded turns: questions, answered, failed and scored per
model and domain, cut answers and the failed questions, in a run caught half way."""

from __future__ import annotations

import dataclasses
from itertools import product
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.aggregator.aggregate import OVERALL, compute_scores
from evalfleet.aggregator.run_counts import counted_scores, failed_questions, truncations
from evalfleet.aggregator.samples import per_question_means
from evalfleet.aggregator.scored import load_scored_turns
from evalfleet.aggregator.summary import failed_questions as failed_of_turns
from evalfleet.aggregator.truncation import truncation_by_label
from evalfleet.producer.create_run import create_run
from evalfleet.schema.models import Answer, Item, ItemState, Story
from evalfleet.schema.payloads import RunConfig

MODELS = {"base": "m/base", "tuned": "m/tuned", "gone": "m/unknown"}


def _half_done_run(tmp_path: Path) -> tuple[sessionmaker[Session], int]:
    """Four stories in two domains; base answered s1 and s2 (one turn failed, one cut), failed
    s3 for good and retries s4; tuned answered s1 and half of s2; `gone` failed everything."""
    _, sessions = database(tmp_path)
    turns = [("Who?", "the mayor"), ("When?", "Monday"), ("What?", "the bridge")]
    sources = {"s1": "cnn", "s2": "race", "s3": "cnn", "s4": "race"}
    text = "The mayor opened the bridge on Monday."
    stories = {key: (source, text, turns) for key, source in sources.items()}
    run_id = create_run(sessions, tiny_dataset(stories), RunConfig(models=MODELS))
    with sessions.begin() as session:
        ids = dict(session.execute(select(Story.key, Story.id)).all())

        def answer(label: str, key: str, turn: int, text: str | None, **extra: object) -> None:
            session.add(Answer(run_id=run_id, model_label=label, story_id=ids[key], turn=turn,
                               text=text, **extra))  # fmt: skip

        for turn in (1, 2, 3):
            answer("base", "s1", turn, "the mayor", finish_reason="stop")
            answer("tuned", "s1", turn, "Monday", finish_reason="length" if turn == 1 else "stop")
        answer("base", "s2", 1, "the bridge", finish_reason="length")
        answer("base", "s2", 2, None, error="HTTP 400: too long")
        answer("base", "s2", 3, "Monday")
        answer("tuned", "s2", 1, "the mayor")

        def item(label: str, key: str, state: ItemState, reason: str | None) -> None:
            session.execute(
                update(Item)
                .where(Item.model_label == label, Item.story_id == ids[key])
                .values(state=state.value, last_error=reason)
            )

        item("base", "s3", ItemState.FAILED, "failed after 6 tries: HTTP 503")
        item("base", "s4", ItemState.PENDING, "HTTP 503: retrying")
        for key in ids:
            item("gone", key, ItemState.FAILED, "model not found")
    return sessions, run_id


def test_the_sql_counts_are_those_of_the_loaded_turns(tmp_path: Path) -> None:
    # Given a run half way, with failures of every kind and a model that answered nothing
    sessions, run_id = _half_done_run(tmp_path)
    with sessions() as session:
        turns = load_scored_turns(session, run_id)
        # When its counts are read from SQL
        counted = counted_scores(session, run_id, list(MODELS))
        cut = truncations(session, run_id, list(MODELS), 128)
        failed = {s.label: s.failed for s in counted if s.domain == OVERALL}
        failures = failed_questions(session, run_id, failed)
    # Then they are the counts computed from every loaded turn, without scores
    expected = [dataclasses.replace(s, em=None, f1=None) for s in compute_scores(turns)]
    assert counted == expected
    assert cut == truncation_by_label(turns, 128, MODELS)
    assert failures == failed_of_turns(turns)
    # And the figures are the story's: base 5 answered, 1 failed turn + 3 of a failed item
    base = next(s for s in counted if s.label == "base" and s.domain == OVERALL)
    assert (base.questions, base.answered, base.failed, base.scored) == (12, 5, 4, 4)
    assert failures[1] == 4 + 12  # and every question of the unknown model


def test_only_the_first_failures_are_listed_but_all_are_counted(tmp_path: Path) -> None:
    # Given the same run, whose unknown model failed 12 questions and base 4
    sessions, run_id = _half_done_run(tmp_path)
    with sessions() as session:
        shown, total = failed_questions(session, run_id, {"base": 4, "tuned": 0, "gone": 12})
        turns = load_scored_turns(session, run_id)
    # Then the list holds base's first, in story and turn order, then the unknown model's
    assert [(f.model, f.story, f.turn) for f in shown[:5]] == [
        ("base", "s2", 2), ("base", "s3", 1), ("base", "s3", 2), ("base", "s3", 3),
        ("gone", "s1", 1),
    ]  # fmt: skip
    assert total == 16 and shown == failed_of_turns(turns)[0]


def test_the_sql_counts_of_a_sampled_run_count_each_question_once(tmp_path: Path) -> None:
    # Given a run asking each question twice: base answered s1 in both samples; on s2 turn 1
    # one sample answered and one failed, turns 2 and 3 failed in both; its s3 sample 1 item
    # failed with nothing stored while sample 0 answered turn 1; tuned answered s1 sample 0
    _, sessions = database(tmp_path)
    turns = [("Who?", "the mayor"), ("When?", "Monday"), ("What?", "the bridge")]
    text = "The mayor opened the bridge on Monday."
    stories = dict.fromkeys(("s1", "s2", "s3"), ("cnn", text, turns))
    config = RunConfig(models={"base": "m/base", "tuned": "m/tuned"}, temperature=1, samples=2)
    run_id = create_run(sessions, tiny_dataset(stories), config)
    with sessions.begin() as session:
        ids = dict(session.execute(select(Story.key, Story.id)).all())

        def answer(label: str, key: str, turn: int, k: int, text: str | None) -> None:
            error = "HTTP 400: too long" if text is None else None
            session.add(Answer(run_id=run_id, model_label=label, story_id=ids[key], turn=turn,
                               sample=k, text=text, error=error,
                               finish_reason="length"))  # fmt: skip

        for turn, k in product((1, 2, 3), (0, 1)):
            answer("base", "s1", turn, k, "the mayor")
            answer("base", "s2", turn, k, "Monday" if (turn, k) == (1, 0) else None)
        answer("base", "s3", 1, 0, "the bridge")
        answer("base", "s3", 2, 0, None)
        answer("tuned", "s1", 1, 0, "the mayor")
        session.execute(
            update(Item)
            .where(Item.model_label == "base", Item.story_id == ids["s3"], Item.sample == 1)
            .values(state=ItemState.FAILED.value, last_error="failed after 6 tries: HTTP 503")
        )
    with sessions() as session:
        samples = load_scored_turns(session, run_id)
        counted = counted_scores(session, run_id, ["base", "tuned"])
        failed = {s.label: s.failed for s in counted if s.domain == OVERALL}
        failures = failed_questions(session, run_id, failed)
        cut = truncations(session, run_id, ["base", "tuned"], 128)
    # Then they are the counts of the loaded samples collapsed per question
    expected = [dataclasses.replace(s, em=None, f1=None) for s in compute_scores(samples)]
    assert counted == expected
    assert failures == failed_of_turns(per_question_means(samples))
    # And a question is answered when one sample answered, failed when none did and one failed
    base = next(s for s in counted if s.label == "base" and s.domain == OVERALL)
    assert (base.questions, base.answered, base.failed, base.scored) == (9, 5, 4, 1)
    assert [(f.story, f.turn) for f in failures[0]] == [("s2", 2), ("s2", 3), ("s3", 2), ("s3", 3)]
    # And answers cut at max_tokens count every sample
    assert cut == truncation_by_label(samples, 128, config.models)
    assert cut["base"].answered == 6 + 1 + 1
