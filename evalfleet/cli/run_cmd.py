"""`evalfleet run`: evaluate the base and the fine-tuned model on a QA data set."""

from __future__ import annotations

import sys

import click

from aggregator.render import render_table
from aggregator.summary import run_summary
from evalfleet.cli.options import load_settings, print_json, stderr, stdout
from evalfleet.runner import LocalCluster, execute_run
from evalfleet.services import open_database
from producer.loaders.registry import load_dataset_spec
from schema.errors import ConfigurationError
from schema.payloads import HistoryMode, RunConfig
from schema.settings import Settings, validate_base_url


def parse_models(base: str | None, finetuned: str | None, pairs: tuple[str, ...]) -> dict[str, str]:
    """`--base`/`--finetuned` or repeated `--model LABEL=NAME`; the first is the reference."""
    models: dict[str, str] = {}
    if base:
        models["base"] = base
    if finetuned:
        models["finetuned"] = finetuned
    for pair in pairs:
        label, sep, name = pair.partition("=")
        if not sep or not label.strip() or not name.strip():
            raise ConfigurationError(f"--model {pair!r}: expected LABEL=MODEL_NAME")
        if label.strip() in models:
            raise ConfigurationError(f"--model {pair!r}: label {label.strip()!r} is used twice")
        models[label.strip()] = name.strip()
    if not models:
        raise ConfigurationError("no model given: use --base and --finetuned (or --model L=NAME)")
    return models


@click.command()
@click.option(
    "--dataset",
    default="coqa",
    show_default=True,
    help="'coqa' (Hugging Face hub) or a .jsonl/.json/.parquet file.",
)
@click.option("--split", default="validation", show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N stories.")
@click.option("--base", default=None, help="The base model's name.")
@click.option("--finetuned", default=None, help="The fine-tuned model's name.")
@click.option(
    "--model", "model_pairs", multiple=True, metavar="LABEL=NAME", help="More models (repeatable)."
)
@click.option(
    "--history",
    type=click.Choice([m.value for m in HistoryMode]),
    default="gold",
    show_default=True,
    help="What earlier turns carry (see README).",
)
@click.option("--temperature", type=float, default=0.0, show_default=True)
@click.option("--max-tokens", type=int, default=128, show_default=True)
@click.option("--seed", type=int, default=None)
@click.option("--wait/--no-wait", default=False, help="Wait with a progress bar, then report.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option(
    "--local-workers",
    type=int,
    default=2,
    show_default=True,
    help="Embedded default only: worker processes started for this run.",
)
@click.option(
    "--local-concurrency",
    type=int,
    default=8,
    show_default=True,
    help="Embedded default only: threads per local worker.",
)
def run(
    dataset: str, split: str, limit: int | None, base: str | None, finetuned: str | None,
    model_pairs: tuple[str, ...], history: str, temperature: float, max_tokens: int,
    seed: int | None, wait: bool, as_json: bool, local_workers: int, local_concurrency: int,
) -> None:  # fmt: skip
    """Evaluate models on a QA data set: one task per (story, model)."""
    settings = load_settings()
    if max_tokens < 1:
        raise ConfigurationError(f"--max-tokens must be at least 1, got {max_tokens}")
    base_url = validate_base_url(settings.together_base_url) if settings.together_base_url else None
    config = RunConfig(
        models=parse_models(base, finetuned, model_pairs),
        history=HistoryMode(history),
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        base_url=base_url,
    )
    settings.api_key_for(base_url)  # a missing key is an error before anything is loaded
    data = load_dataset_spec(dataset, split=split, limit=limit)
    console = stderr if as_json else stdout
    outcome = execute_run(
        settings, data, config, wait, console, LocalCluster(local_workers, local_concurrency)
    )
    finish(settings, outcome.run_id, outcome.state, as_json)


def finish(settings: Settings, run_id: int, state: str | None, as_json: bool) -> None:
    """Print the report (or the queued run) and exit non-zero unless the run is done."""
    sessions = open_database(settings)
    with sessions() as session:
        summary = run_summary(session, run_id)
    if as_json:
        print_json(summary)
    elif state is not None:
        stdout.print(render_table(summary))
    else:
        stdout.print(f"run {run_id} queued: `evalfleet status {run_id}` shows its progress")
    if state is not None and state != "done":
        stderr.print(f"run {run_id} {state}: {summary['error'] or 'see evalfleet status'}")
        sys.exit(1)
