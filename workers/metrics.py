"""A worker's own Prometheus metrics (docs/operations.md, "Metrics"): answers stored, API
latency and outcomes, tokens, dollars and items in flight, served on the worker's
`--metrics-port`.

One plain registry per process: the threads and solo pools run every task in the process
that serves them. Prefork children would each count apart, so `evalfleet worker` refuses
`--metrics-port` with `--pool prefork`."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from evalfleet.schema.pricing import cost_usd
from evalfleet.workers.api import Completion

ANSWERS = Counter(
    "evalfleet_answers_stored",
    "Answer rows this worker committed (new rows only; failed turns included).",
    ["model_label"],
)
JUDGEMENTS = Counter(
    "evalfleet_judgements_stored",
    "Judgement rows this worker committed (new rows only), by judge model and verdict "
    "('error': the judge's reply could not be graded).",
    ["judge", "verdict"],
)
ITEMS_IN_FLIGHT = Gauge("evalfleet_items_in_flight", "Items (model x story) being answered now.")
API_SECONDS = Histogram(
    "evalfleet_api_request_seconds",
    "Duration of one chat-completions request, whatever its outcome.",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
API_REQUESTS = Counter(
    "evalfleet_api_requests",
    "Chat-completions requests by outcome: ok, 429, 5xx, or error (timeouts, connection "
    "errors, other statuses, empty answers).",
    ["model", "outcome"],
)
TOKENS = Counter(
    "evalfleet_tokens", "Tokens of the answers bought (not cached).", ["model", "kind"]
)
COST = Counter(
    "evalfleet_cost_usd", "Dollars of the answers bought, at the run's prices.", ["model"]
)


def serve(port: int) -> None:
    """/metrics on every interface (a scraper on another host must reach it)."""
    start_http_server(port)


def count_request(model: str, seconds: float, error: BaseException | None) -> None:
    API_SECONDS.labels(model).observe(seconds)
    API_REQUESTS.labels(model, outcome(error)).inc()


def outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    status = getattr(error, "status_code", None)
    if status == 429:
        return "429"
    if isinstance(status, int) and status >= 500:
        return "5xx"
    return "error"


def count_usage(model: str, completion: Completion, price: tuple[float, float] | None) -> None:
    prompt, generated = completion.prompt_tokens or 0, completion.completion_tokens or 0
    TOKENS.labels(model, "prompt").inc(prompt)
    TOKENS.labels(model, "completion").inc(generated)
    dollars = cost_usd(price, prompt, generated)
    if dollars:
        COST.labels(model).inc(dollars)


def count_answers(model_labels: Iterable[str]) -> None:
    """One per answer row created, by its model label."""
    for label, stored in Tally(model_labels).items():
        ANSWERS.labels(label).inc(stored)


def count_judgements(rows: Iterable[tuple[str, str | None]]) -> None:
    """One per judgement row created, by (judge, verdict); a verdict None counts as 'error'."""
    for (judge, verdict), stored in Tally(rows).items():
        JUDGEMENTS.labels(judge, verdict or "error").inc(stored)


def scraped(exposition: str, sample: str, **labels: str) -> float:
    """The sum of a sample over the series of a /metrics text whose labels include `labels`,
    e.g. scraped(text, "evalfleet_answers_stored_total"): what a scraper adds up."""
    return sum(
        value.value
        for family in text_string_to_metric_families(exposition)
        for value in family.samples
        if value.name == sample and labels.items() <= value.labels.items()
    )
