"""Messages of several items (tasks.answer_items) in the real Redis: the sweep must see each
of their items as in flight, or it would re-send every short item of a queued run."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from unit.aggregator.simulated_run import tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.producer.enqueue import enqueue_pending
from evalfleet.schema.db import make_engine, make_sessionmaker
from evalfleet.schema.migrate import upgrade
from evalfleet.schema.models import Item
from evalfleet.schema.payloads import RunConfig
from evalfleet.schema.queue import make_celery
from evalfleet.schema.settings import Settings
from evalfleet.workers.reconcile import queued_in_redis, reconcile_run

SHORT = {f"p{i}": ("wikipedia", f"Paragraph {i}.", [("Who?", "me")] * 5) for i in range(4)}
LONG = {"story": ("wikipedia", "A story.", [("Who?", "me")] * 15)}


def test_the_sweep_sees_every_item_of_a_queued_grouped_message(
    postgres_url: str, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    # Given a run of four 5-question paragraphs and one 15-turn story, two models, enqueued
    # on a queue no worker reads
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    config = RunConfig(models={"base": "m1", "finetuned": "m2"})
    run_id = create_run(sessions, tiny_dataset({**SHORT, **LONG}), config)
    settings = Settings(_env_file=None, EVALFLEET_QUEUE=queue_name)
    celery = make_celery(settings, redis_url)
    try:
        assert enqueue_pending(celery, sessions, run_id) == 10
        with celery.connection_for_read() as connection:
            messages = connection.default_channel.client.llen(queue_name)
        # Then the ten items went in four messages, two per model: three paragraphs, then
        # the fourth with the story
        assert messages == 4
        with sessions() as session:
            item_ids = set(session.scalars(select(Item.id).where(Item.run_id == run_id)))
        # And the sweep finds each of them queued: it re-sends none
        assert queued_in_redis(celery, queue_name) == item_ids
        result = reconcile_run(celery, sessions, run_id, queue_name)
        assert (result.open_items, result.in_flight, result.resent) == (10, 10, 0)
    finally:
        with celery.connection_for_write() as connection:
            connection.default_channel.client.delete(queue_name)
        engine.dispose()
