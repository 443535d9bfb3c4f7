"""Judging an item's answers (SQLite, and the simulator's judge over real HTTP): the cascade
(EM = 1 is correct by the rule, not asked), one judgement per answer, the item closed with
its last judgements, resumable, and the judge's failures handled like an answer's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, tiny_dataset
from unit.workers.test_item_writes import RecordingWriter

from evalfleet.aggregator.no_answer import score_answer
from evalfleet.producer.create_run import create_run
from evalfleet.schema.accounting import judge_usage, spent_usd
from evalfleet.schema.lifecycle import reset_for_retry
from evalfleet.schema.models import Answer, Item, ItemState, Judgement, Question, Run
from evalfleet.schema.payloads import JUDGE_LABEL, JudgeConfig, RunConfig
from evalfleet.schema.settings import Settings
from evalfleet.simulator.config import SIM_BASE, SIM_FINETUNED, SIM_JUDGE, SimConfig
from evalfleet.simulator.server import SimServer
from evalfleet.workers.answering import RetryLater, answer_turns, hand_back
from evalfleet.workers.delivery import start_delivery
from evalfleet.workers.errors import Decision
from evalfleet.workers.resources import Resources

STORY = (
    "Tom had a red ball. He played with it in the park every day. His sister Ann was five "
    "years old. Ann liked to paint pictures of birds. One day the ball rolled into the lake, "
    "and a tall man in a blue coat brought it back."
)
QUESTIONS = [
    ("What color was the ball?", "red"),
    ("Where did he play?", "in the park"),
    ("Who was his sister?", "Ann"),
    ("How old was she?", "five years old"),
    ("What did she like to paint?", "birds"),
    ("Where did the ball roll?", "into the lake"),
    ("What was the man wearing?", "a blue coat"),
]
MODELS = {"base": SIM_BASE, "finetuned": SIM_FINETUNED}
PRICE = (0.5, 1.0)


def make_run(
    sessions: sessionmaker[Session],
    sim: SimServer,
    judge: str = SIM_JUDGE,
    cache: bool = True,
    judge_url: str | None = None,
) -> tuple[int, list[int]]:
    config = RunConfig(
        models=MODELS, base_url=sim.base_url, cache=cache,
        judge=JudgeConfig(model=judge, base_url=judge_url),
        prices={**dict.fromkeys(MODELS, PRICE), JUDGE_LABEL: PRICE},
    )  # fmt: skip
    run_id = create_run(sessions, tiny_dataset({"s0": ("cnn", STORY, QUESTIONS)}), config)
    with sessions() as session:
        items = session.scalars(select(Item.id).where(Item.run_id == run_id).order_by(Item.id))
        return run_id, list(items)


def resources_for(sessions: sessionmaker[Session], **settings: Any) -> Resources:
    resources = Resources(
        Settings(_env_file=None, **settings), sessions.kw["bind"], sessions, 4, None
    )
    resources.writer = RecordingWriter(sessions)
    return resources


def deliver(resources: Resources, item_id: int) -> bool:
    delivery = start_delivery(resources.sessions, item_id, resources.settings)
    assert delivery.work is not None
    return answer_turns(delivery.work, resources, attempt=1)


def graded(sessions: sessionmaker[Session], run_id: int) -> list[tuple[Any, ...]]:
    """(label, turn, EM of the answer, verdict, by_rule, reason, error, cached) per judgement."""
    with sessions() as session:
        rows = session.execute(
            select(
                Judgement.model_label, Judgement.turn, Answer.text, Question.references,
                Judgement.verdict, Judgement.by_rule, Judgement.reason, Judgement.error,
                Judgement.cached,
            )
            .join(Answer, (Answer.run_id == Judgement.run_id)
                  & (Answer.model_label == Judgement.model_label)
                  & (Answer.story_id == Judgement.story_id) & (Answer.turn == Judgement.turn))
            .join(Question, (Question.story_id == Answer.story_id) & (Question.turn == Answer.turn))
            .where(Judgement.run_id == run_id)
            .order_by(Judgement.model_label, Judgement.turn)
        ).all()  # fmt: skip
    return [(r[0], r[1], score_answer(r[3], r[2]).em, *r[4:]) for r in rows]


def test_every_answer_gets_one_judgement_and_exact_matches_cost_no_call(tmp_path: Path) -> None:
    # Given a run of both simulated readers over one story, graded by the simulator's judge
    _, sessions = database(tmp_path)
    with SimServer(SimConfig()) as sim:
        run_id, items = make_run(sessions, sim)
        resources = resources_for(sessions)
        # When each item is delivered once
        for item_id in items:
            deliver(resources, item_id)
        stats = sim.stats()
    rows = graded(sessions, run_id)
    # Then every answer has exactly one judgement, each with a verdict and a reason
    assert sorted((label, turn) for label, turn, *_ in rows) == sorted(
        (label, turn) for label in MODELS for turn in range(1, len(QUESTIONS) + 1)
    )
    assert all(verdict and reason and error is None for *_, verdict, _, reason, error, _ in rows)
    # And the answers with EM = 1, and only those, are correct by the rule, with no call
    by_rule = [r for r in rows if r[4]]
    assert by_rule and all(r[2] == 1.0 and r[3] == "correct" for r in by_rule)
    asked = [r for r in rows if not r[4]]
    assert asked and all(r[2] < 1.0 for r in asked)
    assert stats["by_model"][SIM_JUDGE] == len(asked)
    assert {r[3] for r in asked} >= {"correct", "incorrect"}
    # And each judgement was written once, each item closed in the write of its last ones,
    # its calls counting the judge's
    writer = resources.writer
    assert isinstance(writer, RecordingWriter)
    assert sum(writer.judged) == len(rows)
    writes = zip(writer.judged, writer.closes, strict=True)
    closing = [(n, close) for n, close in writes if close is not None]
    assert [close.item_id for _, close in closing] == items
    assert all(n > 0 for n, _ in closing)
    with sessions() as session:
        done = session.scalars(select(Item).where(Item.run_id == run_id)).all()
        assert {i.state for i in done} == {ItemState.DONE.value}
        assert sum(i.api_calls for i in done) == 2 * len(QUESTIONS) + len(asked)
        # And the judge's tokens and cost count in the run's usage and its budget
        config = RunConfig.model_validate(session.get_one(Run, run_id).config)
        judge = judge_usage(session, run_id, config)
        assert judge is not None
        assert judge.prompt_tokens > 0 and judge.completion_tokens > 0 and judge.cost_usd
        answers_only = config.model_copy(update={"judge": None})
        assert spent_usd(session, run_id, config) == pytest.approx(
            spent_usd(session, run_id, answers_only) + judge.cost_usd
        )


@pytest.mark.parametrize("cache", [True, False])
def test_a_redelivered_item_grades_only_the_answers_without_a_judgement(
    tmp_path: Path, cache: bool
) -> None:
    # Given a run whose items were answered and judged, then two judgements lost
    _, sessions = database(tmp_path)
    with SimServer(SimConfig()) as sim:
        run_id, items = make_run(sessions, sim, cache=cache)
        resources = resources_for(sessions)
        for item_id in items:
            deliver(resources, item_id)
        before = graded(sessions, run_id)
        lost = [(label, turn) for label, turn, _, _, by_rule, *_ in before if not by_rule][:2]
        with sessions.begin() as session:
            for label, turn in lost:
                session.execute(
                    delete(Judgement).where(Judgement.model_label == label, Judgement.turn == turn)
                )
            reset_for_retry(session, run_id, items)
        sim.reset_stats()
        # When the items are delivered again
        for item_id in items:
            deliver(resources, item_id)
        stats = sim.stats()
    after = graded(sessions, run_id)
    # Then no answer was asked again, and the judge only for the two lost judgements: from
    # the response cache (no request at all) when the run uses it
    assert stats["by_model"].get(SIM_BASE, 0) == stats["by_model"].get(SIM_FINETUNED, 0) == 0
    assert stats["by_model"].get(SIM_JUDGE, 0) == (0 if cache else 2)
    # And every answer again has exactly one judgement, the same verdicts as before
    assert [r[:5] for r in after] == [r[:5] for r in before]
    renewed = [r for r in after if (r[0], r[1]) in lost]
    assert [cached for *_, cached in renewed] == [cache, cache]


def test_a_reply_without_a_verdict_is_stored_as_the_judgements_error(tmp_path: Path) -> None:
    # Given a run whose "judge" is a reader, which answers with a story sentence
    _, sessions = database(tmp_path)
    with SimServer(SimConfig()) as sim:
        run_id, items = make_run(sessions, sim, judge=SIM_BASE)
        # When its items are delivered
        resources = resources_for(sessions)
        for item_id in items:
            deliver(resources, item_id)
    rows = graded(sessions, run_id)
    # Then the graded answers have a row with the reply's error and no verdict, never a
    # verdict made up; the items are done (the aggregation leaves those answers unjudged)
    asked = [r for r in rows if not r[4]]
    assert asked and all(r[3] is None and "holds no verdict" in r[6] for r in asked)
    assert len(rows) == 2 * len(QUESTIONS)
    with sessions() as session:
        states = session.scalars(select(Item.state).where(Item.run_id == run_id)).all()
    assert set(states) == {ItemState.DONE.value}


def test_a_judge_the_api_does_not_know_stops_the_run_naming_it(tmp_path: Path) -> None:
    # Given a run whose judge the endpoint does not serve
    _, sessions = database(tmp_path)
    with SimServer(SimConfig()) as sim:
        run_id, items = make_run(sessions, sim, judge="evalfleet/no-such-judge")
        # When its first item is delivered
        deliver(resources_for(sessions), items[0])
    # Then the run stopped with one message naming the judge, the answers kept
    with sessions() as session:
        run = session.get_one(Run, run_id)
        answers = session.scalars(select(Answer.id).where(Answer.run_id == run_id)).all()
        states = session.scalars(select(Item.state).where(Item.run_id == run_id)).all()
    assert run.state == "failed"
    assert run.error is not None
    assert run.error.startswith("judge model not found: evalfleet/no-such-judge: ")
    assert len(answers) == len(QUESTIONS)
    assert set(states) == {ItemState.FAILED.value}


def test_a_judge_refusing_the_key_stops_the_run_naming_the_judge(tmp_path: Path) -> None:
    # Given a run whose judge is on an endpoint of its own that refuses the workers' key
    _, sessions = database(tmp_path)
    with (
        SimServer(SimConfig()) as sim,
        SimServer(SimConfig(required_api_key="another-key")) as judge_sim,
    ):
        run_id, items = make_run(sessions, sim, judge_url=judge_sim.base_url)
        # When its first item is delivered
        deliver(resources_for(sessions), items[0])
        asked = judge_sim.stats()["by_status"]
    # Then the judge answered 401, and the run stopped once, saying whose key was refused
    assert set(asked) == {"401"}
    with sessions() as session:
        run = session.get_one(Run, run_id)
    assert run.state == "failed" and run.error is not None
    assert run.error.startswith(f"the API refused the key for the judge {SIM_JUDGE}: ")


def test_a_rate_limited_judge_hands_the_item_back_and_each_retry_grades_the_rest(
    tmp_path: Path,
) -> None:
    # Given a judge that takes two requests, then refuses (429) until its bucket refills,
    # and a worker that tries each request once
    _, sessions = database(tmp_path)
    config = SimConfig(rpm_per_model={SIM_JUDGE: 1}, rate_burst=2)
    with SimServer(config) as sim:
        run_id, items = make_run(sessions, sim)
        resources = resources_for(sessions, EVALFLEET_REQUEST_ATTEMPTS=1)
        rounds = 0
        # When the base model's item is delivered, handed back after each 429, until done
        while True:
            rounds += 1
            try:
                deliver(resources, items[0])
                break
            except RetryLater as retry:
                assert retry.decision is Decision.RATE_LIMITED
                hand_back(sessions, items[0], retry.reason)
                sim.reset_stats()  # the bucket refills, as time would
            assert rounds < 10
        stats = sim.stats()
    rows = graded(sessions, run_id)
    asked = [r for r in rows if not r[4]]
    # Then it took several deliveries, each grading only what had no judgement yet, and
    # every answer ended with exactly one judgement
    assert rounds == 1 + (len(asked) - 1) // 2
    assert len(rows) == len(QUESTIONS) and len({r[1] for r in rows}) == len(QUESTIONS)
    assert all(r[3] for r in rows)
    assert stats["by_model"][SIM_JUDGE] <= 2  # the last round: what was left, all graded
    with sessions() as session:
        assert session.get_one(Item, items[0]).state == ItemState.DONE.value
