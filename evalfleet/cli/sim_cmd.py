"""`evalfleet sim`: the local Together-compatible simulator, for trials without a key."""

from __future__ import annotations

import click

from evalfleet.cli.options import stderr


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True, help="0 picks a free port.")
@click.option(
    "--latency-ms",
    type=float,
    default=0.0,
    show_default=True,
    help="Mean simulated latency per request.",
)
@click.option(
    "--latency-distribution",
    type=click.Choice(["fixed", "exponential", "lognormal"]),
    default="fixed",
    show_default=True,
)
@click.option(
    "--latency-ms-per-token",
    type=float,
    default=0.0,
    show_default=True,
    help="Added per generated token: long answers come slower.",
)
@click.option(
    "--empty-answer-rate",
    type=float,
    default=0.0,
    help="Share of answers the model leaves empty (finish_reason stop: scored).",
)
@click.option(
    "--long-answer-rate",
    type=float,
    default=0.0,
    help="Share of answers that ramble on (60-300 words; cut at max_tokens, finish_reason length).",
)
@click.option(
    "--unicode-answer-rate",
    type=float,
    default=0.0,
    help="Share of answers with non-ASCII text (curly quotes, other scripts, emoji).",
)
@click.option("--rpm", type=int, default=None, help="Requests per minute allowed per model.")
@click.option("--fault-429", type=float, default=0.0, help="Share of requests answered 429.")
@click.option("--fault-503", type=float, default=0.0)
@click.option("--fault-500", type=float, default=0.0)
@click.option("--fault-timeout", type=float, default=0.0, help="Share answered after --timeout-s.")
@click.option("--fault-malformed", type=float, default=0.0, help="Share answered 200, not JSON.")
@click.option("--fault-no-choices", type=float, default=0.0, help='Share answered "choices": [].')
@click.option(
    "--fault-content-filter",
    type=float,
    default=0.0,
    help="Share withheld: finish_reason content_filter, empty content.",
)
@click.option("--fault-reset", type=float, default=0.0, help="Share hung up without an answer.")
@click.option("--fault-cut", type=float, default=0.0, help="Share closed halfway through the body.")
@click.option("--timeout-s", type=float, default=30.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds faults and latency.")
@click.option("--api-key", default=None, help="Require this bearer key (401 otherwise).")
@click.option(
    "--batch-delay-s", type=float, default=1.0, show_default=True,
    help="Seconds from a batch's creation to COMPLETED.",
)  # fmt: skip
@click.option(
    "--batch-error-share", type=float, default=0.0, show_default=True,
    help="Share of batch lines answered in the error file (503).",
)  # fmt: skip
def sim(
    host: str, port: int, latency_ms: float, latency_distribution: str, rpm: int | None,
    latency_ms_per_token: float, empty_answer_rate: float, long_answer_rate: float,
    unicode_answer_rate: float, timeout_s: float, seed: int, api_key: str | None,
    batch_delay_s: float, batch_error_share: float, **faults: float,
) -> None:  # fmt: skip
    """Serve POST /v1/chat/completions and GET /v1/models like the Together API. Also its
    /v1/files and /v1/batches, for batch mode.

    Every --fault-* is a share of requests, 0..1, that fail that way (the endpoint's
    failures; the model's own empty answers are --empty-answer-rate)."""
    from evalfleet.simulator.batches import BatchSimConfig
    from evalfleet.simulator.config import SimConfig
    from evalfleet.simulator.server import SimServer

    try:
        config = SimConfig(
            host=host, port=port, latency_ms_mean=latency_ms,
            latency_distribution=latency_distribution,  # type: ignore[arg-type]
            latency_ms_per_token=latency_ms_per_token, empty_answer_rate=empty_answer_rate,
            long_answer_rate=long_answer_rate, unicode_answer_rate=unicode_answer_rate,
            rpm_per_model=rpm, timeout_s=timeout_s, seed=seed, required_api_key=api_key,
            **faults,  # type: ignore[arg-type]  # only fault_* keys: click passes them
        )  # fmt: skip
        batch = BatchSimConfig(batch_delay_s, batch_error_share, seed=seed)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    server = SimServer(config, batch)
    stderr.print(
        f"simulator on {server.base_url} (set TOGETHER_BASE_URL to this); "
        f"models: {', '.join(config.models)}"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
