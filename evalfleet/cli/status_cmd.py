"""`evalfleet status RUN_ID`: progress and, once done, the scores."""

from __future__ import annotations

from collections.abc import Mapping

import click

from evalfleet.aggregator.health import troubled_models
from evalfleet.aggregator.render import render_table
from evalfleet.aggregator.summary import run_summary
from evalfleet.aggregator.summary_types import ModelSummary, Progress
from evalfleet.cli.batch_status import batch_json, print_batch_progress
from evalfleet.cli.options import load_settings, print_json, stdout
from evalfleet.services import open_database


def question_counts(models: Mapping[str, ModelSummary]) -> str:
    """Answered, failed and still open questions, all models: the table's own figures."""
    total = sum(m.overall.questions for m in models.values())
    answered = sum(m.overall.answered for m in models.values())
    failed = sum(m.overall.failed for m in models.values())
    return (
        f"questions (all models): {answered} answered, {failed} failed, "
        f"{total - answered - failed} open of {total}"
    )


def progress_line(progress: Progress) -> str:
    cost = progress.cost_usd
    return (
        f"elapsed {progress.elapsed_s:.0f}s, "
        f"{progress.requests_per_s:.1f} requests/s, "
        f"{100 * progress.share_429:.1f}% answered 429, "
        f"ETA {progress.eta_s:.0f}s, cost {'unknown' if cost is None else f'${cost:.4f}'}"
    )


@click.command()
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(run_id: int, as_json: bool) -> None:
    """Show a run's state, answered and failed questions per model, and scores so far."""
    sessions = open_database(load_settings())
    with sessions() as session:
        summary = run_summary(session, run_id)
        troubles = troubled_models(session, run_id)
        batches = batch_json(session, run_id) if as_json else {}
    if as_json:
        # A batch-mode run adds its batches' progress; a synchronous run's object is unchanged.
        print_json({**summary.to_json(), **({"batches": batches} if batches else {})})
        return
    stdout.print(f"items: {', '.join(f'{n} {s}' for s, n in summary.item_states.items())}")
    stdout.print(question_counts(summary.models))
    stdout.print(progress_line(summary.progress))
    print_batch_progress(sessions, run_id)
    for trouble in troubles:
        stdout.print(trouble.line, style="bold red", markup=False, highlight=False)
    stdout.print(render_table(summary))
