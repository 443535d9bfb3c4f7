"""The `evalfleet` command: one subcommand per module in this package, imported when used."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from evalfleet.cli.lazy_group import LazyCommand, LazyGroup
from evalfleet.schema.errors import EvalfleetError
from evalfleet.schema.startup_gc import freeze_startup_objects

# Each help is the first sentence of the command's docstring (a unit test holds them equal).
COMMANDS: dict[str, LazyCommand] = {
    "run": LazyCommand(
        "evalfleet.cli.run_cmd:run",
        "Evaluate models on a QA data set: one task per (story, model).",
    ),
    "worker": LazyCommand(
        "evalfleet.cli.worker_cmd:worker",
        "Consume tasks from EVALFLEET_BROKER_URL and write answers to the database.",
    ),
    "flower": LazyCommand(
        "evalfleet.cli.flower_cmd:flower",
        "Watch the workers and tasks of EVALFLEET_BROKER_URL in Flower, a web page.",
    ),
    "status": LazyCommand(
        "evalfleet.cli.status_cmd:status",
        "Show a run's state, answered and failed questions per model, and scores so far.",
    ),
    "report": LazyCommand(
        "evalfleet.cli.report_cmd:report",
        "Report a run: the verdict (paired statistics), EM/F1 per model and source domain.",
    ),
    "compare": LazyCommand(
        "evalfleet.cli.compare_cmd:compare",
        "Compare two runs over the same data (two checkpoints, two prompts): run B's model "
        "against run A's, question by question.",
    ),
    "plan": LazyCommand(
        "evalfleet.cli.plan_cmd:plan",
        "Plan a run from a pilot: the stories that give the wanted power to detect a "
        "difference (story-clustered, from the pilot's spread), and their requests, tokens "
        "and dollars.",
    ),
    "export": LazyCommand(
        "evalfleet.cli.export_cmd:export",
        "One JSON object per (model, question, sample): answer, references, EM/F1 (0-1), "
        "tokens, error.",
    ),
    "reconcile": LazyCommand(
        "evalfleet.cli.reconcile_cmd:reconcile",
        "Re-send every open item of a run that no worker holds and no message names.",
    ),
    "retry": LazyCommand(
        "evalfleet.cli.retry_cmd:retry",
        "Re-run the failed items and failed questions of a run (nothing answered is re-asked).",
    ),
    "sim": LazyCommand(
        "evalfleet.cli.sim_cmd:sim",
        "Serve POST /v1/chat/completions and GET /v1/models like the Together API.",
    ),
    "demo": LazyCommand(
        "evalfleet.cli.demo_cmd:demo",
        "Run a base-vs-fine-tuned eval on the local simulator and print the report.",
    ),
    "db": LazyCommand("evalfleet.cli.db_cmd:db", "Database schema commands."),
}


class EvalfleetGroup(LazyGroup):
    """Domain errors become one clean line and exit code 1 at the edge."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EvalfleetError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=EvalfleetGroup, lazy_commands=COMMANDS)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level to stderr.")
def cli(verbose: bool) -> None:
    """Is the fine-tuned model better than its base model? QA evaluation on Celery workers."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # click resolves (imports) the subcommand before this callback runs: everything the
    # command's module imported is frozen too, and collections scan only the command's objects.
    freeze_startup_objects()


if __name__ == "__main__":
    cli()
