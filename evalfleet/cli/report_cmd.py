"""`evalfleet report RUN_ID`: the verdict and scores as a table, JSON, Markdown or HTML."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from evalfleet.aggregator.render import render_table
from evalfleet.aggregator.report_data import ReportData, report_json, run_report
from evalfleet.cli.options import load_settings, stderr, stdout
from evalfleet.services import open_database

FORMATS = ["table", "json", "markdown", "html"]


format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
    help="html: one self-contained file with its plots; markdown: plots as PNG files beside "
    "--out; json: every number, with the comparison and the diagnostics.",
)  # fmt: skip


out_option = click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)


def write_report(report: ReportData, fmt: str, out: Path | None) -> None:
    """Print or write a report in one of FORMATS; Markdown plots go to OUT_STEM_files/."""
    if fmt == "table":
        if out is None:
            stdout.print(render_table(report.summary))
            return
        with out.open("w", encoding="utf-8") as handle:
            Console(file=handle, width=120).print(render_table(report.summary))
    elif fmt == "json":
        _emit(json.dumps(report_json(report), indent=2, ensure_ascii=False) + "\n", out)
    elif fmt == "html":
        from evalfleet.aggregator.html_report import render_html  # matplotlib: only when plotting

        _emit(render_html(report), out)
    else:
        from evalfleet.aggregator.markdown_report import markdown_report

        folder = None if out is None else f"{out.stem}_files"
        markdown = markdown_report(report, folder)
        for relative, png in markdown.images.items():
            assert out is not None
            path = out.parent / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
        _emit(markdown.text, out)
        if out is None:
            stderr.print("(plots are written with --out: PNG files beside the Markdown file)")


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    stdout.print(f"wrote {out}")


@click.command()
@click.argument("run_id", type=int)
@format_option
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@out_option
def report(run_id: int, fmt: str, as_json: bool, out: Path | None) -> None:
    """Report a run: the verdict (paired statistics), EM/F1 per model and source domain."""
    sessions = open_database(load_settings())
    with sessions() as session:
        data = run_report(session, run_id)
    write_report(data, "json" if as_json else fmt, out)
