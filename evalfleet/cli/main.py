"""The `evalfleet` command: one subcommand per module in this package."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from evalfleet.cli.compare_cmd import compare
from evalfleet.cli.db_cmd import db
from evalfleet.cli.demo_cmd import demo
from evalfleet.cli.export_cmd import export
from evalfleet.cli.reconcile_cmd import reconcile
from evalfleet.cli.report_cmd import report
from evalfleet.cli.retry_cmd import retry
from evalfleet.cli.run_cmd import run
from evalfleet.cli.sim_cmd import sim
from evalfleet.cli.status_cmd import status
from evalfleet.cli.worker_cmd import worker
from evalfleet.schema.errors import EvalfleetError
from evalfleet.schema.startup_gc import freeze_startup_objects


class EvalfleetGroup(click.Group):
    """Domain errors become one clean line and exit code 1 at the edge."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EvalfleetError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=EvalfleetGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level to stderr.")
def cli(verbose: bool) -> None:
    """Is the fine-tuned model better than its base model? QA evaluation on Celery workers."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    freeze_startup_objects()  # everything imported: collections scan only the command's objects


for command in (run, worker, status, report, compare, export, reconcile, retry, sim, demo, db):
    cli.add_command(command)

if __name__ == "__main__":
    cli()
