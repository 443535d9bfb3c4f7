"""`evalfleet report RUN_ID`: the scores as a table, JSON or Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import click

from aggregator.render import render_markdown, render_table
from aggregator.summary import run_summary
from evalfleet.cli.options import load_settings, stdout
from evalfleet.services import open_database


@click.command()
@click.argument("run_id", type=int)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
def report(run_id: int, fmt: str, as_json: bool, out: Path | None) -> None:  # fmt: skip
    """Report a run's EM/F1 per model and source domain."""
    sessions = open_database(load_settings())
    with sessions() as session:
        summary = run_summary(session, run_id)
    fmt = "json" if as_json else fmt
    if fmt == "table" and out is None:
        stdout.print(render_table(summary))
        return
    if fmt == "table":
        from rich.console import Console

        with out.open("w", encoding="utf-8") as handle:  # type: ignore[union-attr]
            Console(file=handle, width=120).print(render_table(summary))
        return
    text = (
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
        if fmt == "json"
        else render_markdown(summary)
    )
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        stdout.print(f"wrote {out}")
