"""`evalfleet run`: evaluate the base and the fine-tuned model on a QA data set."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from evalfleet.aggregator.render import render_table
from evalfleet.aggregator.summary import run_summary
from evalfleet.cli.options import load_settings, print_json, stderr, stdout
from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.runner import LocalCluster, check_local, execute_run
from evalfleet.schema.errors import ConfigurationError
from evalfleet.schema.payloads import (
    JUDGE_LABEL,
    HistoryMode,
    JudgeConfig,
    RunConfig,
    RunMode,
    samples_error,
)
from evalfleet.schema.pricing import batch_price_table, parse_price, price_table
from evalfleet.schema.settings import Settings, validate_base_url
from evalfleet.services import open_database


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
    if JUDGE_LABEL in models:
        raise ConfigurationError(
            f"--model {JUDGE_LABEL}=...: the label {JUDGE_LABEL!r} is the judge's (its price's "
            "key); give the model another label, or grade with --judge MODEL"
        )
    return models


def judge_of(
    settings: Settings, model: str | None, url: str | None, mode: str
) -> JudgeConfig | None:
    """`--judge MODEL [--judge-base-url URL]`, checked before anything is loaded."""
    if model is None:
        if url is not None:
            raise ConfigurationError("--judge-base-url needs --judge MODEL")
        return None
    if not model.strip():
        raise ConfigurationError("--judge needs a model name")
    if mode == RunMode.BATCH.value:
        raise ConfigurationError(
            "--judge is not supported with --mode batch yet (the judge grades each answer "
            "synchronously after it is stored); use --mode sync"
        )
    base_url = validate_base_url(url) if url else None
    if base_url is not None:
        settings.api_key_for(base_url)  # a missing key for the judge's URL, said now
    return JudgeConfig(model=model.strip(), base_url=base_url)


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
@click.option(
    "--mode",
    type=click.Choice([m.value for m in RunMode]),
    default="sync",
    show_default=True,
    help="sync: one request per question; batch: provider batch files at the batch price.",
)
@click.option(
    "--batch-price",
    "batch_price_pairs",
    multiple=True,
    metavar="MODEL=IN,OUT",
    help="Batch mode's $ per million input,output tokens (default: half of --price).",
)
@click.option("--temperature", type=float, default=0.0, show_default=True)
@click.option("--max-tokens", type=int, default=128, show_default=True)
@click.option("--seed", type=int, default=None)
@click.option(
    "--samples",
    type=int,
    default=1,
    show_default=True,
    help="Ask each question K times (needs --temperature > 0; seeds seed+0..K-1).",
)
@click.option(
    "--finetuned-job",
    default=None,
    metavar="FT_ID",
    help="Take the fine-tuned model from this Together fine-tuning job.",
)
@click.option(
    "--cache/--no-cache",
    default=True,
    show_default=True,
    help="Reuse stored responses for identical requests.",
)
@click.option(
    "--rpm",
    type=float,
    default=None,
    help="Requests per minute per model, cluster-wide (default: adaptive).",
)
@click.option("--tpm", type=float, default=None, help="Tokens per minute per model, cluster-wide.")
@click.option("--budget", type=float, default=None, help="Stop starting work once $ spent.")
@click.option(
    "--price",
    "price_pairs",
    multiple=True,
    metavar="MODEL=IN,OUT",
    help="$ per million input,output tokens (repeatable).",
)
@click.option(
    "--judge",
    "judge_model",
    default=None,
    metavar="MODEL",
    help="Grade every answer with this model too (correct / incorrect / not attempted).",
)
@click.option(
    "--judge-base-url",
    default=None,
    metavar="URL",
    help="The judge's API, when not the run's (host only, like TOGETHER_BASE_URL).",
)
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
@click.option(
    "--flower",
    is_flag=True,
    help="Embedded default only: watch the run in Flower (its URL is printed).",
)
@click.option(
    "--preflight/--no-preflight",
    default=True,
    show_default=True,
    help="Check the endpoint, the key and the models before anything is written.",
)
def run(
    dataset: str, split: str, limit: int | None, base: str | None, finetuned: str | None,
    model_pairs: tuple[str, ...], history: str, mode: str, batch_price_pairs: tuple[str, ...],
    temperature: float, max_tokens: int,
    seed: int | None, samples: int, finetuned_job: str | None, cache: bool, rpm: float | None,
    tpm: float | None, budget: float | None, price_pairs: tuple[str, ...],
    judge_model: str | None, judge_base_url: str | None, wait: bool,
    as_json: bool, local_workers: int, local_concurrency: int, flower: bool, preflight: bool,
) -> None:  # fmt: skip
    """Evaluate models on a QA data set: one task per (story, model)."""
    settings = load_settings()
    if mode == RunMode.BATCH.value and history == HistoryMode.MODEL.value:
        raise ConfigurationError(
            "--mode batch needs independent turns: with --history model each turn waits for "
            "the model's previous answer; use --history gold, questions or none, or --mode sync"
        )
    samples_problem = samples_error(samples, temperature, RunMode(mode))
    if samples_problem is not None:
        raise ConfigurationError(samples_problem)
    if max_tokens < 1:
        raise ConfigurationError(f"--max-tokens must be at least 1, got {max_tokens}")
    for name, value in (("--rpm", rpm), ("--tpm", tpm), ("--budget", budget)):
        if value is not None and value <= 0:
            raise ConfigurationError(f"{name} must be positive, got {value:g}")
    base_url = validate_base_url(settings.together_base_url) if settings.together_base_url else None
    settings.api_key_for(base_url)  # a missing key is an error before anything is loaded
    judge = judge_of(settings, judge_model, judge_base_url, mode)
    if finetuned_job:
        if finetuned:
            raise ConfigurationError("give --finetuned or --finetuned-job, not both")
        # The `together` SDK (0.3 s to import) only here: the workers make the API calls.
        from evalfleet.producer.finetune_job import resolve_finetuned_model
        from evalfleet.workers.api import make_client

        client = make_client(settings, base_url, connections=2)
        finetuned = resolve_finetuned_model(client, finetuned_job)
    models = parse_models(base, finetuned, model_pairs)
    prices = price_table(settings.prices_file, dict(parse_price(p) for p in price_pairs))
    if mode == RunMode.BATCH.value:  # every answer of a batch run is bought at the batch price
        batch_overrides = dict(parse_price(p, "--batch-price") for p in batch_price_pairs)
        prices = batch_price_table(settings.prices_file, prices, batch_overrides)
    config = RunConfig(
        models=models,
        history=HistoryMode(history),
        mode=RunMode(mode),
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        samples=samples,
        base_url=base_url,
        cache=cache,
        rpm=rpm,
        tpm=tpm,
        budget_usd=budget,
        judge=judge,
        prices={label: prices.get(name) for label, name in models.items()},
    )
    if judge is not None:  # the judge's price, from the same table and --price as the models'
        config.prices[JUDGE_LABEL] = prices.get(judge.model)
    if budget is not None and any(p is None for p in config.prices.values()):
        named = {**models, **({JUDGE_LABEL: judge.model} if judge else {})}
        unpriced = [name for label, name in named.items() if config.prices[label] is None]
        raise ConfigurationError(
            f"--budget needs a price for every model; none for {', '.join(unpriced)}: "
            "add --price MODEL=IN,OUT"
        )
    data = load_dataset_spec(dataset, split=split, limit=limit)
    console = stderr if as_json else stdout
    local = LocalCluster(local_workers, local_concurrency, flower=flower)
    check_local(settings, local)
    if preflight:
        check_endpoint_of(settings, config, console)
    outcome = execute_run(settings, data, config, wait, console, local)
    finish(settings, outcome.run_id, outcome.state, as_json)


def check_endpoint_of(settings: Settings, config: RunConfig, console: Console) -> None:
    """Refuse the run, before a row is written, when its endpoint cannot serve it."""
    from evalfleet.preflight import check_endpoint  # the `together` SDK: only when it runs

    # The judge is checked like the models: on the run's endpoint with them, or on its own.
    endpoints: dict[str | None, dict[str, str]] = {config.base_url: dict(config.models)}
    if config.judge is not None:
        endpoints.setdefault(config.judge_base_url(), {})[JUDGE_LABEL] = config.judge.model
    for url, models in endpoints.items():
        for note in check_endpoint(settings, url, models).notes:
            console.print(f"preflight: {note}", markup=False, highlight=False)


def finish(settings: Settings, run_id: int, state: str | None, as_json: bool) -> None:
    """Print the report (or the queued run) and exit non-zero unless the run is done."""
    sessions = open_database(settings)
    with sessions() as session:
        summary = run_summary(session, run_id)
    if as_json:
        print_json(summary.to_json())
    elif state is not None:
        stdout.print(render_table(summary))
    else:
        stdout.print(f"run {run_id} queued: `evalfleet status {run_id}` shows its progress")
    if state is not None and state != "done":
        stderr.print(f"run {run_id} {state}: {summary.error or 'see evalfleet status'}")
        sys.exit(1)
