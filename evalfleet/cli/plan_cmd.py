"""`evalfleet plan --from RUN_ID --mde 2`: how many stories a comparison needs, and the cost."""

from __future__ import annotations

import click

from evalfleet.aggregator.paired import ALPHA, POWER
from evalfleet.aggregator.plan_report import plan_lines, plan_run, plan_to_json
from evalfleet.cli.options import load_settings, print_json
from evalfleet.schema.pricing import price_table
from evalfleet.services import open_database


def _probability(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0 < value < 1:
        raise click.BadParameter(f"must be within (0, 1), got {value}")
    return value


@click.command()
@click.option("--from", "run_id", type=int, required=True, help="A finished (pilot) run.")
@click.option(
    "--mde", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
    help="Minimum detectable effect: the difference to find, in F1 (and EM) points (0-100).",
)  # fmt: skip
@click.option("--power", type=float, default=POWER, show_default=True, callback=_probability)
@click.option(
    "--alpha", type=float, default=ALPHA, show_default=True, callback=_probability,
    help="Two-sided significance level.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def plan(run_id: int, mde: float, power: float, alpha: float, as_json: bool) -> None:
    """Plan a run from a pilot: the stories that give the wanted power to detect a difference
    (story-clustered, from the pilot's spread), and their requests, tokens and dollars."""
    settings = load_settings()
    sessions = open_database(settings)
    with sessions() as session:
        result = plan_run(session, run_id, mde, alpha, power, price_table(settings.prices_file, {}))
    if as_json:
        print_json(plan_to_json(result, mde, alpha, power))
        return
    for line in plan_lines(result):
        click.echo(line)
