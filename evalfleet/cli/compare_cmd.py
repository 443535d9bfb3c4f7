"""`evalfleet compare RUN_A RUN_B`: one model of run B against one of run A, paired."""

from __future__ import annotations

from pathlib import Path

import click

from evalfleet.aggregator.cross_run import compare_runs
from evalfleet.cli.options import load_settings
from evalfleet.cli.report_cmd import format_option, format_targets, out_option, write_report
from evalfleet.services import open_database


@click.command()
@click.argument("run_a", type=int)
@click.argument("run_b", type=int)
@click.option("--label-a", default=None, help="Model label of run A (default: its first model).")
@click.option("--label-b", default=None, help="Model label of run B (default: its first model).")
@format_option
@out_option
def compare(
    run_a: int,
    run_b: int,
    label_a: str | None,
    label_b: str | None,
    fmts: tuple[str, ...],
    outs: tuple[Path, ...],
) -> None:
    """Compare two runs over the same data (two checkpoints, two prompts): run B's model
    against run A's, question by question. Runs on different data are refused."""
    targets = format_targets(fmts, outs)
    sessions = open_database(load_settings())
    with sessions() as session:
        data = compare_runs(session, run_a, run_b, label_a, label_b)
    for fmt, out in targets:
        write_report(data, fmt, out)
