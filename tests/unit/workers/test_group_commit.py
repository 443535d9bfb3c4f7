"""The group-commit writer on a real SQLite database: every caller's rows committed once, many
callers in one transaction, and a caller's bad rows failing only that caller."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.schema.lifecycle import ItemClose, claim_item
from evalfleet.schema.models import Answer, Item, ItemState, Judgement, Story, utcnow
from evalfleet.schema.payloads import RunConfig
from evalfleet.workers.group_commit import GroupCommitWriter

ANSWERS_SAMPLE = "evalfleet_answers_stored_total"
JUDGEMENTS_SAMPLE = "evalfleet_judgements_stored_total"
STORIES = {
    f"s{i}": ("wikipedia", f"Story {i}.", [(f"Question {t}?", "yes") for t in range(1, 5)])
    for i in range(3)
}


def run_of_three_stories(tmp_path: Path) -> tuple[sessionmaker[Session], int, list[int]]:
    """A SQLite database holding one run of STORIES: its sessions, run id and story ids."""
    _url, sessions = database(tmp_path)
    run_id = create_run(sessions, tiny_dataset(STORIES), RunConfig(models={"base": "m"}))
    with sessions() as session:
        story_ids = list(session.scalars(select(Story.id).where(Story.run_id == run_id)))
    return sessions, run_id, story_ids


def answer_row(run_id: int, story_id: int, turn: int) -> dict[str, Any]:
    return {
        "run_id": run_id, "model_label": "base", "story_id": story_id, "turn": turn, "sample": 0,
        "text": f"answer {story_id}/{turn}", "finish_reason": "stop", "prompt_tokens": 10,
        "completion_tokens": 2, "latency_ms": 200.0, "attempts": 1, "cached": False,
        "error": None, "created_at": utcnow(),
    }  # fmt: skip


def write_all(
    writer: GroupCommitWriter,
    writes: list[list[dict[str, Any]]],
    entered: threading.Semaphore | None = None,
) -> list[Exception]:
    """Each write from its own thread, all at once (each signals `entered` as it starts); the
    errors the callers saw."""
    errors: list[Exception] = []

    def write(rows: list[dict[str, Any]]) -> None:
        if entered is not None:
            entered.release()
        try:
            writer.write(rows, [])
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(rows,)) for rows in writes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return errors


def test_concurrent_writers_share_transactions_and_each_row_is_stored_once(
    tmp_path: Path,
) -> None:
    # Given a run of 3 stories x 4 turns and a writer whose first commit is held until the
    # other 11 writes are queued behind it
    sessions, run_id, story_ids = run_of_three_stories(tmp_path)
    writer = GroupCommitWriter(sessions, window_s=0)
    entered = threading.Semaphore(0)
    commits = []

    def hold_first_commit(_connection: Any) -> None:
        if not commits:  # the other writers are all queued once they have entered write()
            for _ in range(11):
                assert entered.acquire(timeout=10)
            # entered is signalled just before write(): wait until all 11 are in its queue
            # (a fixed sleep was too short on a loaded machine)
            deadline = time.monotonic() + 10
            while writer._queue.qsize() < 11 and time.monotonic() < deadline:
                time.sleep(0.01)
        commits.append(1)

    event.listen(sessions.kw["bind"], "commit", hold_first_commit)
    # When 12 threads each write one answer at once
    writes = [[answer_row(run_id, s, t)] for s in story_ids for t in range(1, 5)]
    errors = write_all(writer, writes, entered)
    # Then every answer is stored exactly once, in two transactions instead of twelve
    assert errors == []
    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(Answer))
        distinct = session.scalar(
            select(func.count()).select_from(
                select(Answer.story_id, Answer.turn).distinct().subquery()
            )
        )
    assert stored == distinct == 12
    assert len(commits) == 2
    # And writing the same rows again (a redelivered task) adds nothing
    assert write_all(writer, writes[:3]) == []  # (the hold is spent: no wait here)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 12


def test_writes_wait_for_company_within_the_window_unless_urgent(tmp_path: Path) -> None:
    # Given a run and a writer that gathers writes for up to 1 s
    sessions, run_id, story_ids = run_of_three_stories(tmp_path)
    writer = GroupCommitWriter(sessions, window_s=1.0)
    commits: list[float] = []
    event.listen(sessions.kw["bind"], "commit", lambda _c: commits.append(time.monotonic()))
    writes = [[answer_row(run_id, s, t)] for s in story_ids for t in range(1, 5)]
    # When 12 threads write at once
    assert write_all(writer, writes) == []
    # Then one transaction holds them all
    assert len(commits) == 1
    # And an urgent write (the next turn waits for it) is committed without the window
    started = time.monotonic()
    writer.write([answer_row(run_id, story_ids[0], 1)], [], urgent=True)
    assert len(commits) == 2 and commits[-1] - started < 1.0


def test_a_callers_bad_rows_fail_that_caller_only(tmp_path: Path) -> None:
    # Given a run, and one write among several that names a story that does not exist
    sessions, run_id, story_ids = run_of_three_stories(tmp_path)
    writer = GroupCommitWriter(sessions, window_s=0.2)
    good = [[answer_row(run_id, s, t)] for s in story_ids for t in range(1, 5)]
    bad = [answer_row(run_id, max(story_ids) + 100, 1)]
    # When they are written at once
    errors = write_all(writer, [*good[:6], bad, *good[6:]])
    # Then only the bad caller sees an error, and every good answer is stored
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 12


def test_a_write_with_nothing_to_store_returns_at_once(tmp_path: Path) -> None:
    _url, sessions = database(tmp_path)
    writer = GroupCommitWriter(sessions)
    writer.write([], [])
    assert writer._thread is None  # no thread was started for it
    with pytest.raises(IntegrityError):  # a real error still reaches the caller
        writer.write([answer_row(1, 1, 1)], [])


def test_the_answers_metric_counts_the_rows_created_not_a_duplicates_rewrite(
    tmp_path: Path,
) -> None:
    # Given a run, a writer and the worker's answers counter as it stands
    sessions, run_id, story_ids = run_of_three_stories(tmp_path)
    writer = GroupCommitWriter(sessions, window_s=0)
    before = REGISTRY.get_sample_value(ANSWERS_SAMPLE, {"model_label": "base"}) or 0.0
    # When 4 answers are stored, then a duplicate delivery writes 2 of them again and 1 new
    writer.write([answer_row(run_id, story_ids[0], t) for t in range(1, 5)], [])
    writer.write([answer_row(run_id, story_ids[0], t) for t in (3, 4)], [])
    writer.write([answer_row(run_id, story_ids[1], 1)], [])
    # Then the counter moved by the 5 rows SQL holds
    after = REGISTRY.get_sample_value(ANSWERS_SAMPLE, {"model_label": "base"})
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 5
    assert after == before + 5


def test_judgements_are_stored_once_per_key_and_counted_once_by_verdict(
    tmp_path: Path,
) -> None:
    # Given a run with answers, and the worker's judgements counter as it stands
    sessions, run_id, story_ids = run_of_three_stories(tmp_path)
    writer = GroupCommitWriter(sessions, window_s=0)
    writer.write([answer_row(run_id, story_ids[0], t) for t in range(1, 5)], [])
    labels = {"judge": "j", "verdict": "correct"}
    before = REGISTRY.get_sample_value(JUDGEMENTS_SAMPLE, labels) or 0.0

    def judgement(turn: int, verdict: str | None) -> dict[str, Any]:
        return {
            "run_id": run_id, "model_label": "base", "story_id": story_ids[0], "turn": turn,
            "sample": 0, "judge": "j", "verdict": verdict, "reason": "r", "by_rule": False,
            "prompt_tokens": 5, "completion_tokens": 1, "latency_ms": 1.0, "cached": False,
            "error": None if verdict else "unreadable", "created_at": utcnow(),
        }  # fmt: skip

    # When 3 judgements are written, then a duplicate write brings 2 of them again, one
    # with another verdict, and 1 new
    writer.write([], [], judgements=[judgement(1, "correct"), judgement(2, "correct"),
                                     judgement(3, None)])  # fmt: skip
    writer.write([], [], judgements=[judgement(2, "incorrect"), judgement(3, "correct")])
    writer.write([], [], judgements=[judgement(4, "correct")])
    # Then SQL holds one judgement per answer, the first written, and the counter moved
    # by the rows created
    with sessions() as session:
        stored = dict(session.execute(select(Judgement.turn, Judgement.verdict)).all())
    assert stored == {1: "correct", 2: "correct", 3: None, 4: "correct"}
    assert REGISTRY.get_sample_value(JUDGEMENTS_SAMPLE, labels) == before + 3


def test_a_close_commits_with_its_answers_or_not_at_all(tmp_path: Path) -> None:
    # Given a run of three stories, each item held by a delivery
    sessions, run_id, story_ids = run_of_three_stories(tmp_path)
    with sessions.begin() as session:
        items = dict(session.execute(select(Item.story_id, Item.id)).all())
        for item_id in items.values():
            claim_item(session, item_id, 60.0, takeover=False, now=utcnow())
    writer = GroupCommitWriter(sessions)
    commits: list[int] = []
    event.listen(sessions.kw["bind"], "commit", lambda _c: commits.append(1))
    first, second, third = story_ids
    # When an item's last answer is written with its close, while other items are open
    may_end = writer.write(
        [answer_row(run_id, first, 1)], [], close=ItemClose(items[first], run_id, 3)
    )
    # Then the item is done with its calls in that one transaction, knowing it is not the last
    assert (may_end, len(commits)) == (False, 1)
    # And a close whose answers fail to commit leaves its item running, and raises
    with pytest.raises(IntegrityError):
        writer.write([answer_row(run_id, 10_000, 1)], [], close=ItemClose(items[second], run_id))
    # And the last two closes, even without rows, say the run may be done
    assert writer.write([], [], close=ItemClose(items[second], run_id)) is False
    assert writer.write([], [], close=ItemClose(items[third], run_id)) is True
    with sessions() as session:
        states = dict(session.execute(select(Item.story_id, Item.state)).all())
        calls = session.scalar(select(Item.api_calls).where(Item.id == items[first]))
    assert states == dict.fromkeys(story_ids, ItemState.DONE.value) and calls == 3


def test_urgent_closes_queued_during_a_commit_share_the_next_transaction(
    tmp_path: Path,
) -> None:
    # Given three running items, and a writer whose first commit is held until the other
    # two items' last answers are queued behind it
    sessions, run_id, story_ids = run_of_three_stories(tmp_path)
    with sessions.begin() as session:
        items = dict(session.execute(select(Item.story_id, Item.id)).all())
        for item_id in items.values():
            claim_item(session, item_id, 60.0, takeover=False, now=utcnow())
    writer = GroupCommitWriter(sessions, window_s=1.0)
    commits: list[int] = []
    committing = threading.Event()

    def hold_first_commit(_connection: Any) -> None:
        committing.set()
        deadline = time.monotonic() + 10
        while not commits and writer._queue.qsize() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        commits.append(1)

    event.listen(sessions.kw["bind"], "commit", hold_first_commit)
    ends: dict[int, bool] = {}

    def close(story_id: int) -> None:
        close = ItemClose(items[story_id], run_id)
        ends[story_id] = writer.write([answer_row(run_id, story_id, 1)], [], close=close)

    # When each item's last answer comes with its close (urgent), the first one alone, the
    # other two while it commits
    threads = [threading.Thread(target=close, args=(s,)) for s in story_ids]
    threads[0].start()
    assert committing.wait(10)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then the two queued meanwhile are committed together, at once (not after the window)
    assert len(commits) == 2
    with sessions() as session:
        states = set(session.scalars(select(Item.state)))
        stored = session.scalar(select(func.count()).select_from(Answer))
    assert states == {ItemState.DONE.value} and stored == 3
    # And the transaction that closed the last two says the run may be done, the first not
    assert ends == {story_ids[0]: False, story_ids[1]: True, story_ids[2]: True}
