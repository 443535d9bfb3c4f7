"""`evalfleet status RUN_ID`: progress and, once done, the scores."""

from __future__ import annotations

import click

from aggregator.render import render_table
from aggregator.summary import run_summary
from evalfleet.cli.options import load_settings, print_json, stdout
from evalfleet.services import open_database


@click.command()
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(run_id: int, as_json: bool) -> None:
    """Show a run's state, answered and failed questions per model, and scores so far."""
    sessions = open_database(load_settings())
    with sessions() as session:
        summary = run_summary(session, run_id)
    if as_json:
        print_json(summary)
        return
    stdout.print(f"items: {', '.join(f'{n} {s}' for s, n in summary['items'].items())}")
    stdout.print(render_table(summary))
