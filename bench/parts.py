"""The throughput bench's parts, each measured on its own warm fleet (or pool) and simulator."""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from bare_pool import bare_pool_s
from measure import descendants, peak_rss_mb
from part_setup import Setup, fleet_on, warm_fleet, warm_up
from progress import say
from seed_protocol import run_seed_protocol
from sim_process import Sim
from workload import MODELS

from evalfleet.producer.loaders.registry import load_dataset_spec


def bench_efficiency(setup: Setup, rounds: int) -> dict[str, Any]:
    """`rounds` rounds on one warm fleet, each an evalfleet run then the two bare pools on
    the same requests: the machine is shared, and a round's three figures see the same
    load. The headline figures are medians over the rounds; `timing` is the median run's."""
    dataset = setup.dataset(setup.stories, setup.turns)
    requests = setup.stories * setup.turns * len(MODELS)
    concurrency = setup.workers * setup.concurrency
    measured: list[dict[str, Any]] = []
    with warm_fleet(setup, "eff", setup.latency_ms) as (sim, fleet):
        ideal = requests * sim.latency_s / concurrency
        for index in range(rounds):
            sim.reset()
            timing = fleet.submit(dataset, sim, "--no-cache", *setup.unlimited_options())
            stats = sim.stats()
            bare_together_s, bare_cpu_s = bare_pool_s(
                sim.base_url, dataset, concurrency, "together"
            )
            bare_httpx_s, _ = bare_pool_s(sim.base_url, dataset, concurrency, "httpx")
            measured.append(
                {
                    "efficiency": round(ideal / timing.created_to_done_s, 3),
                    "efficiency_from_command_start": round(ideal / timing.command_to_done_s, 3),
                    "efficiency_to_last_answer": round(ideal / timing.last_answer_s, 3),
                    "bare_together_pool_efficiency": round(ideal / bare_together_s, 3),
                    # What evalfleet's queue, database and limiter cost over the same SDK
                    # calls, same round.
                    "vs_bare_together_pool": round(bare_together_s / timing.created_to_done_s, 3),
                    "bare_httpx_pool_efficiency": round(ideal / bare_httpx_s, 3),
                    # Worker CPU per answer over the bare pool's CPU per request (the same
                    # requests): what the queue, database and limiter cost in CPU.
                    "cpu_per_answer_vs_bare": round(
                        timing.cpu["workers_cpu_s"] / max(bare_cpu_s, 1e-9), 3
                    ),
                    "simulator_requests": stats["requests_total"],
                    "simulator_max_in_flight": stats["max_in_flight"],
                    "timing": asdict(timing),
                }
            )
            say(
                f"efficiency round {index + 1}/{rounds}: {requests} requests, ideal {ideal:.2f}s,"
                f" run {timing.created_to_done_s}s, bare together pool {bare_together_s:.2f}s,"
                f" bare httpx pool {bare_httpx_s:.2f}s"
            )
        rss = peak_rss_mb(fleet.worker_pids())
    by_efficiency = sorted(measured, key=lambda r: float(r["efficiency"]))
    median_run = by_efficiency[(len(measured) - 1) // 2]
    figures = {
        key: median([float(r[key]) for r in measured])
        for key in (
            "efficiency",
            "efficiency_from_command_start",
            "efficiency_to_last_answer",
            "bare_together_pool_efficiency",
            "vs_bare_together_pool",
            "bare_httpx_pool_efficiency",
            "cpu_per_answer_vs_bare",
        )
    }
    return {
        "requests": requests,
        "concurrency": concurrency,
        "ideal_s": round(ideal, 3),
        "rounds": len(measured),
        **figures,
        "efficiency_range": [by_efficiency[0]["efficiency"], by_efficiency[-1]["efficiency"]],
        "simulator_max_in_flight": max(int(r["simulator_max_in_flight"]) for r in measured),
        "worker_rss_mb": rss,
        "timing": median_run["timing"],
        "each_round": measured,
    }


def median(values: Sequence[float]) -> float:
    return round(float(statistics.median(values)), 3)


def bench_seed(setup: Setup, pool_size: int) -> dict[str, Any]:
    stories = load_dataset_spec(str(setup.dataset(setup.stories, setup.turns))).stories
    sim = Sim(setup.log_dir, setup.latency_ms)
    try:
        result = run_seed_protocol(sim.base_url, stories, MODELS, pool_size)
        stats = sim.stats()
    finally:
        sim.stop()
    say(f"seed protocol: {result.requests} requests in {result.wall_s:.2f}s")
    ideal = result.requests * sim.latency_s / pool_size
    return {**asdict(result), "ideal_s": round(ideal, 3), "simulator": stats["by_status"]}


def rate_in(times: Sequence[float], start: float, end: float, trim: float) -> float:
    """Answers per minute within start..end, `trim` of that span left out at each end."""
    low, high = start + trim * (end - start), end - trim * (end - start)
    return sum(low <= t <= high for t in times) / max(1e-9, high - low) * 60


def model_rates(times: dict[str, list[float]], created: float, trim: float) -> dict[str, Any]:
    """Per model: the rate over the run's middle (run created .. last answer of any model), and
    the rate while that model was being served (its own first .. last answer)."""
    end = max(t for model_times in times.values() for t in model_times)
    return {
        label: {
            "run_rpm": round(rate_in(model_times, created, end, trim), 1),
            "active_rpm": round(rate_in(model_times, min(model_times), max(model_times), trim), 1),
            "first_answer_s": round(min(model_times) - created, 2),
            "last_answer_s": round(max(model_times) - created, 2),
        }
        for label, model_times in sorted(times.items())
    }


def bench_rate_limit(
    setup: Setup, stories: int, turns: int, workers: int, concurrency: int, limit: int
) -> dict[str, Any]:
    dataset = setup.dataset(stories, turns)
    with contextlib.ExitStack() as stack:
        warm_sim = Sim(setup.log_dir, 20)
        stack.callback(warm_sim.stop)
        sim = Sim(setup.log_dir, setup.latency_ms, rpm=limit)  # a new port: new limiter keys
        stack.callback(sim.stop)
        fleet = stack.enter_context(fleet_on(setup, "rate", workers, concurrency))
        warm_up(setup, fleet, warm_sim)
        timing = fleet.submit(dataset, sim, "--no-cache")
        stats = sim.stats()
        times = fleet.sql.answer_times(timing.run_id)
        created = fleet.sql.run_created(timing.run_id)
    rates = model_rates(times, created, 0.1)
    fractions = {label: round(r["run_rpm"] / limit, 3) for label, r in rates.items()}
    active = {label: round(r["active_rpm"] / limit, 3) for label, r in rates.items()}
    share_429 = stats["by_status"].get("429", 0) / max(1, stats["requests_total"])
    say(
        f"rate limit: sustained {fractions} of {limit}/min (while served: {active}), "
        f"429 share {share_429:.3f}"
    )
    return {
        "sustained_fraction": min(fractions.values()),
        "sustained_fraction_by_model": fractions,
        "share_429": round(share_429, 4),
        "fraction_while_model_served": active,
        "limit_rpm": limit,
        "by_model": rates,
        "run_vs_floor": round(stories * turns / (limit / 60) / timing.last_answer_s, 3),
        "floor_s": round(stories * turns / (limit / 60), 2),
        "simulator": {k: stats[k] for k in ("requests_total", "by_status", "rate_limited")},
        "timing": asdict(timing),
    }


def bench_cache(setup: Setup) -> dict[str, Any]:
    dataset = setup.dataset(setup.stories, setup.turns)
    with warm_fleet(setup, "cache", setup.latency_ms) as (sim, fleet):
        fill = fleet.submit(dataset, sim, *setup.unlimited_options())
        filled = sim.stats()["requests_total"]
        sim.reset()
        rerun = fleet.submit(dataset, sim, *setup.unlimited_options())
        rerun_calls = sim.stats()["requests_total"]
        (cached,) = fleet.sql.one(
            "SELECT count(*) FILTER (WHERE cached) FROM answers WHERE run_id = %s", rerun.run_id
        )
    say(
        f"cache: fill {filled} calls in {fill.created_to_done_s}s, rerun {rerun_calls} calls "
        f"in {rerun.created_to_done_s}s"
    )
    return {
        "rerun_api_calls": rerun_calls,
        "fill_api_calls": filled,
        "rerun_cached_answers": int(cached),
        "fill": asdict(fill),
        "rerun": asdict(rerun),
    }


def bench_pipeline(setup: Setup, stories: int) -> dict[str, Any]:
    dataset = setup.dataset(stories, setup.turns)
    with warm_fleet(setup, "pipe", 0) as (sim, fleet):
        timing = fleet.submit(dataset, sim, "--no-cache", *setup.unlimited_options())
        pids = fleet.worker_pids()
        rss = peak_rss_mb(pids)
        rss_each = [peak_rss_mb(descendants(pid)) for pid in fleet.workers.pids()]
    rate = timing.answers / timing.last_answer_s
    say(f"pipeline: {timing.answers} answers, {rate:.0f}/s, worker peak RSS {rss} MB")
    return {
        "pipeline_answers_per_s": round(rate, 1),
        "answers_per_s_created_to_done": round(timing.answers / timing.created_to_done_s, 1),
        "worker_rss_mb": rss,
        "worker_rss_mb_each": rss_each,
        "timing": asdict(timing),
    }
