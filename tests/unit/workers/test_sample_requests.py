"""Each sample of a question is its own request: its own seed, its own cache key, its own
stored answers; a run asked once sends the requests it always sent."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import Answer, Item, utcnow
from evalfleet.schema.payloads import RunConfig
from evalfleet.schema.settings import Settings
from evalfleet.workers import cache
from evalfleet.workers.delivery import Work, start_delivery
from evalfleet.workers.turns import turn_cache_key, turn_request

STORIES = {"s0": ("wikipedia", "Tom had a cat.", [("Who had a cat?", "Tom"), ("What?", "a cat")])}
SETTINGS = Settings(EVALFLEET_LEASE_S=60.0, EVALFLEET_MAX_ATTEMPTS=2)


def works(tmp_path: Path, config: RunConfig) -> list[Work]:
    """Every item of a new run, delivered; sample 1's first turn answered before."""
    _url, sessions = database(tmp_path)
    run_id = create_run(sessions, tiny_dataset(STORIES), config)
    with session_scope(sessions) as session:
        items = session.execute(select(Item.id, Item.story_id).order_by(Item.id)).all()
        if config.samples > 1:
            session.add(Answer(run_id=run_id, model_label="base", story_id=items[0].story_id,
                               turn=1, sample=1, text="Tom", created_at=utcnow()))  # fmt: skip
    found = [start_delivery(sessions, item_id, SETTINGS).work for item_id, _ in items]
    return [work for work in found if work is not None]


def test_each_sample_has_its_seed_its_cache_key_and_only_its_own_stored_answers(
    tmp_path: Path,
) -> None:
    # Given a run of 3 samples per question at temperature 0.7, without --seed
    config = RunConfig(models={"base": "org/base"}, temperature=0.7, samples=3)
    # When its items are delivered
    samples = works(tmp_path, config)
    requests = [turn_request(work, 1, {}) for work in samples]
    # Then sample k asks with seed k, and no two samples share a cached response
    assert [work.sample for work in samples] == [0, 1, 2]
    assert [request.seed for request in requests] == [0, 1, 2]
    assert all(request.messages == requests[0].messages for request in requests)
    keys = {turn_cache_key(work, r) for work, r in zip(samples, requests, strict=True)}
    assert len(keys) == 3
    # And each delivery reads only its own sample's stored answers
    assert [work.stored for work in samples] == [{}, {1: "Tom"}, {}]
    # And with --seed 40 the samples ask with 40, 41 and 42
    seeded = config.model_copy(update={"seed": 40})
    assert [seeded.sample_seed(k) for k in range(3)] == [40, 41, 42]


def test_a_run_asked_once_sends_the_requests_and_cache_keys_it_always_did(tmp_path: Path) -> None:
    # Given a run asked once, with no seed, at temperature 0.7
    config = RunConfig(models={"base": "org/base"}, temperature=0.7)
    (work,) = works(tmp_path, config)
    request = turn_request(work, 1, {})
    # Then its request has no seed, and its cache key is the one made from the run's own
    # parameters, as before samples existed
    assert request.seed is None and work.sample == 0
    params = {"temperature": 0.7, "max_tokens": 128, "seed": None}
    assert turn_cache_key(work, request) == cache.cache_key(
        None, "org/base", request.messages, params
    )
    assert config.model_copy(update={"seed": 7}).sample_seed(0) == 7
