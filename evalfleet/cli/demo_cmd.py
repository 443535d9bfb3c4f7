"""`evalfleet demo`: base vs fine-tuned on the simulator, everything embedded, then the report."""

from __future__ import annotations

import os

import click

from evalfleet.cli.options import load_settings, stdout
from evalfleet.cli.run_cmd import finish
from evalfleet.producer.demo_set import load_demo_set
from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.runner import LocalCluster, execute_run
from evalfleet.schema.payloads import HistoryMode, JudgeConfig, RunConfig
from evalfleet.simulator.config import DEMO_MODELS, SIM_JUDGE


@click.command()
@click.option(
    "--dataset",
    default=None,
    help="Default: the 8-story CoQA demo set inside the package. Else 'coqa' (the Hugging "
    "Face hub) or a .jsonl/.json/.parquet file.",
)
@click.option("--limit", type=int, default=20, show_default=True)
@click.option(
    "--latency-ms", type=float, default=50.0, show_default=True, help="Simulated API latency."
)
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--concurrency", type=int, default=8, show_default=True)
@click.option(
    "--judge/--no-judge",
    default=True,
    show_default=True,
    help="Grade every answer with the simulator's judge model too.",
)
def demo(dataset: str | None, limit: int, latency_ms: float, workers: int,
         concurrency: int, judge: bool) -> None:  # fmt: skip
    """Run a base-vs-fine-tuned eval on the local simulator and print the report."""
    from evalfleet.simulator.config import SimConfig
    from evalfleet.simulator.server import SimServer

    if dataset is None:
        data = load_demo_set(limit)
    else:
        data = load_dataset_spec(dataset, split="validation", limit=limit)
    with SimServer(
        SimConfig(latency_ms_mean=latency_ms, latency_distribution="exponential")
    ) as sim:
        os.environ["TOGETHER_BASE_URL"] = sim.base_url
        settings = load_settings()
        config = RunConfig(
            models=DEMO_MODELS,
            history=HistoryMode.GOLD,
            base_url=sim.base_url,
            judge=JudgeConfig(model=SIM_JUDGE) if judge else None,
        )
        stdout.print(
            f"demo: {data.name} ({len(data.stories)} stories) on the simulator at {sim.base_url}, "
            f"database {settings.effective_database_url}"
        )
        outcome = execute_run(
            settings, data, config, True, stdout, LocalCluster(workers, concurrency)
        )
    finish(settings, outcome.run_id, outcome.state, as_json=False)
