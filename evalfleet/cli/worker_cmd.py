"""`evalfleet worker`: a Celery worker with evalfleet's settings."""

from __future__ import annotations

import os
import secrets

import click

from evalfleet.cli.options import load_settings
from evalfleet.schema.errors import ConfigurationError


@click.command()
@click.option(
    "--concurrency",
    default=8,
    show_default=True,
    help="Items (story x model) worked on at once, and the most API requests this worker has "
    "in flight, all models together.",
)
@click.option(
    "--pool",
    type=click.Choice(["threads", "prefork", "solo"]),
    default="threads",
    show_default=True,
    help="threads suits API-bound work; prefork enforces task_time_limit.",
)
@click.option("--loglevel", default="INFO", show_default=True)
@click.option(
    "--name",
    "--hostname",
    "name",
    default=None,
    help="Celery node name, e.g. w1@%h (default: evalfleet-PID-XXXX@HOST, one per process).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve Prometheus metrics on this port, all interfaces (default: "
    "EVALFLEET_METRICS_PORT, or none). Threads and solo pools only.",
)
@click.option(
    "--events/--no-events",
    default=None,
    help="Send task events from the first task on, for Flower's tasks page (default: "
    "EVALFLEET_TASK_EVENTS, else off; a running Flower turns them on within 5 s).",
)
def worker(
    concurrency: int,
    pool: str,
    loglevel: str,
    name: str | None,
    metrics_port: int | None,
    events: bool | None,
) -> None:
    """Consume tasks from EVALFLEET_BROKER_URL and write answers to the database."""
    settings = load_settings()
    if not settings.broker_url:
        raise ConfigurationError(
            "EVALFLEET_BROKER_URL is not set: a worker needs the broker the producer uses "
            "(e.g. redis://:password@host:6379/0)"
        )
    if concurrency < 1:
        raise ConfigurationError(f"--concurrency must be at least 1, got {concurrency}")
    # The resources module sizes its DB and HTTP pools from this.
    os.environ["EVALFLEET_WORKER_CONCURRENCY"] = str(concurrency)
    os.environ["EVALFLEET_WORKER_POOL"] = pool
    port = metrics_port if metrics_port is not None else settings.metrics_port
    if port is not None:
        serve_metrics(port, pool)
    from evalfleet.workers.app import app

    if events is not None:  # over EVALFLEET_TASK_EVENTS (schema/queue.py)
        app.conf.update(worker_send_task_events=events, task_send_sent_event=events)

    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--loglevel={loglevel}",
        f"--queues={settings.queue}",
        "--without-gossip",
        "--without-mingle",
    ]
    argv.append(f"--hostname={name or default_node_name()}")
    app.worker_main(argv)


def default_node_name() -> str:
    """A name no other worker has: Celery's default, celery@HOST, is the same for every
    process on a host, and Flower, inspect and remote control then merge them into one.
    The random part keeps replicas apart that share a hostname and a PID (containers)."""
    return f"evalfleet-{os.getpid()}-{secrets.token_hex(2)}@%h"


def serve_metrics(port: int, pool: str) -> None:
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"--metrics-port must be between 1 and 65535, got {port}")
    if pool == "prefork":
        # Each prefork child would count in a registry of its own, which nobody serves.
        raise ConfigurationError(
            "--metrics-port needs --pool threads or solo: prefork children count apart"
        )
    from evalfleet.workers import metrics

    try:
        metrics.serve(port)
    except OSError as exc:
        raise ConfigurationError(f"cannot serve metrics on port {port}: {exc.strerror}") from exc
