"""Grade an item's answers with the run's judge (docs/architecture.md, "The judge"): an answer
with EM = 1 is correct by the rule, with no call (the cascade); every other one is one judge
request through the path an answer's request takes (the judge model's cluster-wide rate
limiter, this thread's client, the retry policy, the process's in-flight bound and the
response cache). The judgements are stored as they arrive, through the process's group
commit (workers/arrivals.py), so a worker killed mid-grading loses only the requests still
in flight; the write of the last ones closes the item."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evalfleet.aggregator.no_answer import score_answer
from evalfleet.schema.lifecycle import ItemClose
from evalfleet.schema.models import JudgeVerdict, utcnow
from evalfleet.schema.payloads import JUDGE_LABEL, JudgeConfig
from evalfleet.workers import cache
from evalfleet.workers.arrivals import store_as_they_arrive
from evalfleet.workers.delivery import Work
from evalfleet.workers.errors import Decision, describe, redact
from evalfleet.workers.judge_prompt import (
    JUDGE_MAX_TOKENS,
    UnreadableReply,
    build_judge_messages,
    read_judge_reply,
)
from evalfleet.workers.requesting import CallCounts, Request, RequestFailed
from evalfleet.workers.resources import Resources
from evalfleet.workers.turns import TurnOutcome, ask_model

# The judge grades greedily: the same prompt gets the same verdict, and its cache key holds.
JUDGE_PARAMS: dict[str, float | int | None] = {
    "temperature": 0.0,
    "max_tokens": JUDGE_MAX_TOKENS,
    "seed": None,
}
BY_RULE_REASON = "exact match with a reference (EM = 1): correct by the rule, not asked"


@dataclass
class Graded:
    """One delivery's grading: the rows not yet handed to the writer, the requests that
    failed in a way that stores nothing (retried later, or stopping the run), and whether
    the write of the last judgements closed the item (and may have been its run's last:
    lifecycle.close_each)."""

    judgements: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    failures: list[RequestFailed] = field(default_factory=list)
    closed: bool = False
    may_be_last: bool = True


def grade_item(
    work: Work, resources: Resources, answers: Mapping[int, str | None], counts: CallCounts
) -> Graded:
    """Grade every answer (text not None) that has no judgement yet: by the rule, from the
    cache, or by the judge on the process's API pool (the judge model's own), storing the
    judgements as they arrive; the last write closes the item when no request failed."""
    config, judge = work.config, work.config.judge
    assert judge is not None, "grade_item needs a run with a judge"
    base_url = config.judge_base_url()
    graded = Graded()
    requests: dict[int, Request] = {}
    for turn, question, references in work.questions:
        text = answers.get(turn)
        if text is None or turn in work.judged:  # graded by an earlier delivery
            continue
        if score_answer(references, text).em == 1.0:
            graded.judgements.append(
                judgement_row(work, judge, turn, JudgeVerdict.CORRECT, BY_RULE_REASON, by_rule=True)
            )
            continue
        messages = build_judge_messages(question, work.story_text, references, text)
        requests[turn] = Request(judge.model, messages, 0.0, JUDGE_MAX_TOKENS, None)
    keys = {
        turn: cache.cache_key(base_url, judge.model, r.messages, JUDGE_PARAMS)
        if config.cache
        else None
        for turn, r in requests.items()
    }
    hits = cache.lookup(resources.sessions, {k for k in keys.values() if k is not None})
    ready = [TurnOutcome(t, hits[k], cached=True) for t, k in keys.items() if k in hits]
    pool = resources.executor(base_url, judge.model)
    price = config.prices.get(JUDGE_LABEL)
    pending = {
        pool.submit(
            ask_model, resources, config, base_url, price, turn, request, keys[turn], counts
        )
        for turn, request in requests.items()
        if keys[turn] not in hits
    }

    def store(_: list[TurnOutcome], batch: list[TurnOutcome], urgent: bool, last: bool) -> None:
        for outcome in batch:
            add_outcome(graded, work, judge, outcome, resources)
        judgements, responses = graded.judgements, graded.responses
        graded.judgements, graded.responses = [], []  # handed over: never written twice
        close = None
        if last and not graded.failures:  # every request is in: its calls are all counted
            close = ItemClose(work.item_id, work.run_id, counts.calls, counts.rate_limited)
        written = resources.writer.write((), responses, urgent, close, judgements)
        if close is not None:
            graded.may_be_last, graded.closed = written, True

    store_as_they_arrive(ready, pending, counts, store)
    return graded


def add_outcome(
    graded: Graded, work: Work, judge: JudgeConfig, outcome: TurnOutcome, resources: Resources
) -> None:
    """A judge reply as a verdict (or, unreadable, as the row's error); a request refused
    for good (400, content filter) as the row's error; any other failure as no row."""
    completion, failure = outcome.completion, outcome.failure
    if completion is None:
        assert failure is not None
        if failure.decision is not Decision.FAIL_TURN:
            graded.failures.append(failure)
            return
        refused = redact(describe(failure.cause), resources.settings)
        graded.judgements.append(judgement_row(work, judge, outcome.turn, error=refused))
        return
    if outcome.cache_key is not None:
        graded.responses.append(cache.cache_row(outcome.cache_key, judge.model, completion))
    verdict: JudgeVerdict | None = None
    reason: str | None = None
    error: str | None = None
    try:
        reply = read_judge_reply(completion.text)
        verdict, reason = JudgeVerdict(reply.verdict), reply.reason
    except UnreadableReply as exc:
        error = str(exc)
    graded.judgements.append(
        judgement_row(
            work, judge, outcome.turn, verdict, reason,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_ms=completion.latency_ms, cached=outcome.cached, error=error,
        )
    )  # fmt: skip


def judgement_row(
    work: Work,
    judge: JudgeConfig,
    turn: int,
    verdict: JudgeVerdict | None = None,
    reason: str | None = None,
    *,
    by_rule: bool = False,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    latency_ms: float | None = None,
    cached: bool = False,
    error: str | None = None,
) -> dict[str, Any]:
    """One judgement row (upserted on JUDGEMENT_KEY: a second write of it changes nothing)."""
    return {
        "run_id": work.run_id,
        "model_label": work.label,
        "story_id": work.story_id,
        "turn": turn,
        "sample": work.sample,
        "judge": judge.model,
        "verdict": verdict.value if verdict is not None else None,
        "reason": reason,
        "by_rule": by_rule,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "latency_ms": latency_ms,
        "cached": cached,
        "error": error,
        "created_at": utcnow(),
    }
