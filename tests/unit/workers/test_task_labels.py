"""What Flower shows for a task: its run, model label and story (Celery's argsrepr), on every
message that sends one (enqueue, reconcile, a retry), while the arguments stay ids."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery.exceptions import Retry
from sqlalchemy import select
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.producer.enqueue import enqueue_pending
from evalfleet.schema.models import Item, Story
from evalfleet.schema.payloads import (
    AGGREGATE_RUN_TASK,
    ANSWER_ITEM_TASK,
    ANSWER_ITEMS_TASK,
    RunConfig,
)
from evalfleet.schema.task_labels import MAX_STORY_KEY, answer_item_label
from evalfleet.workers import reconcile

STORIES = {
    key: ("wikipedia", f"Story {key}.", [("Who?", "me")]) for key in ("coqa-7", "Super_Bowl_50#2")
}


class SentTasks:
    """A Celery app's sending side that only records what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_task(self, name: str, args: list[Any], **options: Any) -> None:
        self.sent.append({"name": name, "args": args, **options})

    @contextlib.contextmanager
    def producer_or_acquire(self) -> Iterator[None]:
        yield None


def a_run(tmp_path: Path) -> tuple[Any, int]:
    _url, sessions = database(tmp_path)
    config = RunConfig(models={"base": "m1", "finetuned": "m2"})
    return sessions, create_run(sessions, tiny_dataset(STORIES), config)


def test_a_label_names_the_run_the_model_label_the_story_and_the_item() -> None:
    assert answer_item_label(3, "base", "coqa-7", 18) == "run 3 base story coqa-7 item 18"
    long_key = "k" * 200
    label = answer_item_label(3, "base", long_key, 18)
    assert len(label) < 100 and label.endswith("... item 18")
    assert f"story {'k' * (MAX_STORY_KEY - 3)}..." in label


def test_enqueued_messages_carry_item_ids_and_a_label_with_run_model_and_story(
    tmp_path: Path,
) -> None:
    # Given a run of two stories and two models
    sessions, run_id = a_run(tmp_path)
    celery = SentTasks()
    # When it is enqueued one item to a message
    sent = enqueue_pending(celery, sessions, run_id, questions_per_message=1)  # type: ignore[arg-type]
    assert sent == 4
    # Then each message's arguments are one item id, and its label names run, model, story
    with sessions() as session:
        items = session.scalars(select(Item).where(Item.run_id == run_id).order_by(Item.id)).all()
    assert [message["args"] for message in celery.sent] == [[item.id] for item in items]
    labels = [message["argsrepr"] for message in celery.sent]
    assert labels == [
        f"run {run_id} base story coqa-7 item {items[0].id}",
        f"run {run_id} finetuned story coqa-7 item {items[1].id}",
        f"run {run_id} base story Super_Bowl_50#2 item {items[2].id}",
        f"run {run_id} finetuned story Super_Bowl_50#2 item {items[3].id}",
    ]
    assert all(message["name"] == ANSWER_ITEM_TASK for message in celery.sent)
    # And the label holds no story text or model name
    assert not any("Story " in label or " m1" in label for label in labels)
    # And sent as short items (one question each), each model's go in one message, whose
    # label lists every item's
    celery.sent.clear()
    assert enqueue_pending(celery, sessions, run_id, only_unsent=False) == 4  # type: ignore[arg-type]
    assert celery.sent == [
        {
            "name": ANSWER_ITEMS_TASK,
            "args": [[items[first].id, items[first + 2].id]],
            "producer": None,
            "argsrepr": f"{labels[first]}; {labels[first + 2]}",
        }
        for first in (0, 1)
    ]


def test_a_reconciled_item_is_resent_with_its_label_and_a_lost_aggregation_with_its_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run whose items were never sent, and no worker or queue holding any
    sessions, run_id = a_run(tmp_path)
    monkeypatch.setattr(reconcile, "queued_in_redis", lambda _celery, _queue: set())
    monkeypatch.setattr(reconcile, "held_by_workers", lambda _celery: set())
    celery = SentTasks()
    # When the run is reconciled
    result = reconcile.reconcile_run(celery, sessions, run_id, "q")  # type: ignore[arg-type]
    # Then each lost item goes again, labelled as when it was first sent
    assert result.resent == 4
    with sessions() as session:
        rows = session.execute(
            select(Item.id, Item.model_label, Story.key).join(Story, Story.id == Item.story_id)
        ).all()
    assert {m["args"][0]: m["argsrepr"] for m in celery.sent} == {
        item_id: f"run {run_id} {label} story {key} item {item_id}" for item_id, label, key in rows
    }
    # And a run whose last item ended without its aggregation gets one, labelled by run
    with sessions() as session:
        for item in session.scalars(select(Item)):
            item.state = "done"
        session.commit()
    celery.sent.clear()
    assert reconcile.recover_aggregation(celery, sessions, run_id)  # type: ignore[arg-type]
    assert celery.sent == [
        {"name": AGGREGATE_RUN_TASK, "args": [run_id], "argsrepr": f"run {run_id} aggregation"}
    ]


@pytest.fixture
def retried(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """What the workers' app sends when a task retries."""
    from evalfleet.workers.app import app
    from evalfleet.workers.tasks import answer_item

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "send_task", lambda name, args, kwargs, **o: sent.append(
        {"name": name, "args": list(args), "kwargs": kwargs, **o}
    ))  # fmt: skip
    answer_item.push_request(
        id="task-1", args=[18], kwargs={}, argsrepr="run 3 base story 5 item 18", retries=0,
        called_directly=False, delivery_info={"exchange": "", "routing_key": "evalfleet"},
    )  # fmt: skip
    yield sent
    answer_item.pop_request()


def test_a_retry_keeps_the_label_it_was_sent_with(retried: list[dict[str, Any]]) -> None:
    from evalfleet.workers.tasks import answer_item

    # When the task retries, as after a database error (new keyword arguments, same item)
    with pytest.raises(Retry):
        answer_item.retry(countdown=1, kwargs={"takeover": True})
    # Then the same message comes back labelled as it was, not as "[18]"
    [message] = retried
    assert message["args"] == [18] and message["kwargs"] == {"takeover": True}
    assert message["argsrepr"] == "run 3 base story 5 item 18"
    assert message["task_id"] == "task-1" and message["retries"] == 1


def test_a_retry_with_other_arguments_drops_a_label_that_would_no_longer_fit(
    retried: list[dict[str, Any]],
) -> None:
    from evalfleet.workers.tasks import answer_item

    with pytest.raises(Retry):
        answer_item.retry(args=[19], countdown=1)
    [message] = retried
    assert message["args"] == [19] and "argsrepr" not in message


def test_an_item_of_a_grouped_message_that_must_come_back_comes_back_alone_and_labelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalfleet.workers import tasks

    # Given a message of a run's four items, the second of which must come back later (a
    # database error while its lease was held)
    sessions, run_id = a_run(tmp_path)
    with sessions() as session:
        ids = sorted(session.scalars(select(Item.id).where(Item.run_id == run_id)))
    delivered: list[tuple[int, int, bool]] = []

    def deliver(_resources: Any, item_id: int, retries: int, takeover: bool) -> Any:
        delivered.append((item_id, retries, takeover))
        return tasks.Again(2.5, takeover=True) if item_id == ids[1] else None

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks, "deliver", deliver)
    monkeypatch.setattr(tasks, "get_resources", lambda: SimpleNamespace(sessions=sessions))
    monkeypatch.setattr(tasks.app, "send_task", lambda name, **o: sent.append({"name": name, **o}))
    # When the message is delivered
    tasks.answer_items.apply(args=[ids])
    # Then each item was delivered once, in order, as a first delivery
    assert delivered == [(item_id, 0, False) for item_id in ids]
    # And the second comes back alone, as answer_item's first retry, keeping its lease
    assert sent == [
        {
            "name": ANSWER_ITEM_TASK,
            "args": [ids[1]],
            "kwargs": {"takeover": True},
            "countdown": 2.5,
            "retries": 1,
            "argsrepr": f"run {run_id} finetuned story coqa-7 item {ids[1]}",
        }
    ]
