"""`evalfleet retry RUN_ID`: ask again only what failed, then aggregate again."""

from __future__ import annotations

import click

from evalfleet.cli.options import load_settings, stdout
from evalfleet.producer.enqueue import enqueue_pending
from evalfleet.producer.retry import reset_failed
from evalfleet.runner import submit_batches
from evalfleet.schema.models import Run
from evalfleet.schema.payloads import RunConfig, RunMode
from evalfleet.services import open_broker, open_database, require_broker_url


@click.command()
@click.argument("run_id", type=int)
def retry(run_id: int) -> None:
    """Re-run the failed items and failed questions of a run (nothing answered is re-asked)."""
    settings = load_settings()
    broker_url = require_broker_url(settings, "retry sends to the workers")
    sessions = open_database(settings)
    celery = open_broker(settings, broker_url)
    reset = reset_failed(sessions, run_id)
    with sessions() as session:
        config = RunConfig.model_validate(session.get_one(Run, run_id).config)
    if config.mode is RunMode.BATCH:  # asked again in batches, at the batch price (D10)
        batches = submit_batches(celery, sessions, settings, config, run_id)
        stdout.print(f"run {run_id}: {reset} items with failures reset, {batches} batches sent")
        return
    sent = enqueue_pending(
        celery, sessions, run_id, questions_per_message=settings.questions_per_message
    )
    stdout.print(f"run {run_id}: {reset} items with failures reset, {sent} sent")
