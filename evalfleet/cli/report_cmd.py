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
    "--format", "fmts", type=click.Choice(FORMATS), multiple=True,
    help="table (default); html: one self-contained file with its plots; markdown: plots as "
    "PNG files beside --out; json: every number, with the comparison and the diagnostics. "
    "Repeat it for several formats from one computation, each with its --out.",
)  # fmt: skip


out_option = click.option(
    "--out",
    "outs",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="Write to this file instead of standard output; with several --format, one --out "
    "for each, in the same order.",
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


def format_targets(fmts: tuple[str, ...], outs: tuple[Path, ...]) -> list[tuple[str, Path | None]]:
    """Each format with its output file (None: standard output), or a usage error."""
    if len(fmts) <= 1 and len(outs) <= 1:
        return [(fmts[0] if fmts else "table", outs[0] if outs else None)]
    if len(outs) != len(fmts):
        raise click.UsageError(
            f"{len(fmts)} --format and {len(outs)} --out: with several formats, give one --out "
            "for each, in the same order (e.g. --format json --out r.json --format html --out "
            "r.html)"
        )
    return list(zip(fmts, outs, strict=True))


@click.command()
@click.argument("run_id", type=int)
@format_option
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@out_option
def report(run_id: int, fmts: tuple[str, ...], as_json: bool, outs: tuple[Path, ...]) -> None:
    """Report a run: the verdict (paired statistics), EM/F1 per model and source domain."""
    targets = format_targets(("json",) if as_json else fmts, outs)
    sessions = open_database(load_settings())
    with sessions() as session:
        data = run_report(session, run_id)  # once, for every format asked
    for fmt, out in targets:
        write_report(data, fmt, out)
