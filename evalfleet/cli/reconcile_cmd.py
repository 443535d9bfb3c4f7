"""`evalfleet reconcile RUN_ID`: re-send the items Redis lost (workers also sweep on their own)."""

from __future__ import annotations

import click

from evalfleet.cli.options import load_settings, stdout
from evalfleet.schema.errors import RunNotFoundError
from evalfleet.schema.models import Run
from evalfleet.services import open_broker, open_database, require_broker_url
from evalfleet.workers.reconcile import reconcile_run


@click.command()
@click.argument("run_id", type=int)
def reconcile(run_id: int) -> None:
    """Re-send every open item of a run that no worker holds and no message names."""
    settings = load_settings()
    broker_url = require_broker_url(settings, "reconcile talks to the workers")
    sessions = open_database(settings)
    with sessions() as session:
        if session.get(Run, run_id) is None:
            raise RunNotFoundError(f"no run with id {run_id}")
    celery = open_broker(settings, broker_url)
    result = reconcile_run(celery, sessions, run_id, settings.queue)
    stdout.print(
        f"run {run_id}: {result.open_items} open items, {result.in_flight} in flight, "
        f"{result.resent} re-sent" + (", aggregation sent" if result.aggregation_sent else "")
    )
