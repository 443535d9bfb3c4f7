"""One turn of an item: its request, its cache key, and asking it."""

from __future__ import annotations

from dataclasses import dataclass

from evalfleet.schema.payloads import RunConfig
from evalfleet.workers import cache, metrics
from evalfleet.workers.api import Completion
from evalfleet.workers.delivery import Work
from evalfleet.workers.prompts import build_messages
from evalfleet.workers.requesting import CallCounts, Request, RequestFailed, ask
from evalfleet.workers.resources import Resources


@dataclass(frozen=True)
class TurnOutcome:
    turn: int
    completion: Completion | None
    failure: RequestFailed | None = None
    cached: bool = False  # served from the response cache
    cache_key: str | None = None  # keep the response under this key with the answer


def turn_request(work: Work, turn: int, own_answers: dict[int, str]) -> Request:
    config = work.config
    return Request(
        model=work.model,
        messages=build_messages(work.story_text, work.questions, turn, config.history, own_answers),
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        seed=config.sample_seed(work.sample),
    )


def turn_cache_key(work: Work, request: Request) -> str | None:
    """The request's key in the response cache; None when the run does not use the cache.
    Each sample's seed is in its parameters, so samples never share a cached response."""
    config = work.config
    if not config.cache:
        return None
    return cache.cache_key(
        config.base_url, request.model, request.messages, config.generation_params(work.sample)
    )


def ask_turn(
    work: Work,
    resources: Resources,
    turn: int,
    request: Request,
    cache_key: str | None,
    counts: CallCounts,
) -> TurnOutcome:
    """One turn's request (on an API thread, with that thread's client); nothing stored."""
    price = work.config.prices.get(work.label)
    return ask_model(
        resources, work.config, work.config.base_url, price, turn, request, cache_key, counts
    )


def ask_model(
    resources: Resources,
    config: RunConfig,
    base_url: str | None,
    price: tuple[float, float] | None,
    turn: int,
    request: Request,
    cache_key: str | None,
    counts: CallCounts,
) -> TurnOutcome:
    """`request` asked of its model at `base_url` (an answer's or the judge's, D7: the
    model's cluster-wide limiter), its usage counted at `price`; nothing stored."""
    try:
        completion = ask(
            request,
            resources.client(base_url),
            resources.retry_policy.request_attempts,
            resources.limiter(base_url, request.model, config.rpm, config.tpm),
            counts,
            in_flight=resources.in_flight,
        )
    except RequestFailed as failure:
        return TurnOutcome(turn, None, failure)
    metrics.count_usage(request.model, completion, price)
    return TurnOutcome(turn, completion, cache_key=cache_key)
