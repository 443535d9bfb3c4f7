"""Short items against long ones: answers per second on SQuAD-shaped items (a paragraph and
about 5 independent questions) over that on CoQA-shaped items (a story and 15 turns).

    .venv/bin/python bench/short_items.py [--paragraphs 300] [--stories 100] [--rounds 2]

The same pipeline for both (bench/README.md): real worker processes
(2 x --concurrency 32), the machine's Redis and a fresh PostgreSQL database, `evalfleet sim`
without latency, requests unlimited, no cache. Short: the first --paragraphs paragraphs of
the SQuAD v1.1 dev set (../shared/data/squad); long: --stories stories of 15 turns cycled
from the CoQA sample (about as many questions). Rounds alternate long and short on one warm
fleet; the ratio is the median of each round's. What an item costs once (claim, reads,
lease, close, aggregation check) weighs three times as much per answer on the short items;
their Celery message they share, three to a message (EVALFLEET_QUESTIONS_PER_MESSAGE).
Prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from part_setup import Setup, warm_fleet
from progress import say
from run_sql import RunTiming
from workload import ROOT

SQUAD = ROOT.parent / "shared" / "data" / "squad" / "squad-dev-v1.1.json"
LONG_TURNS = 15


def bench_short_items(setup: Setup, paragraphs: int, stories: int, rounds: int) -> dict[str, Any]:
    """`rounds` rounds of a long run then a short one on one warm fleet at zero latency."""
    if not SQUAD.exists():
        raise SystemExit(f"the SQuAD dev set is missing: {SQUAD} (see its README)")
    long_set = setup.dataset(stories, LONG_TURNS)
    runs: dict[str, list[RunTiming]] = {"long": [], "short": []}
    with warm_fleet(setup, "short", 0) as (sim, fleet):
        for index in range(rounds):
            for shape, dataset, options in (
                ("long", long_set, ()),
                ("short", SQUAD, ("--limit", str(paragraphs))),
            ):
                timing = fleet.submit(
                    dataset, sim, *options, "--no-cache", *setup.unlimited_options()
                )
                runs[shape].append(timing)
                say(
                    f"round {index + 1}/{rounds} {shape}: {timing.answers} answers, "
                    f"{timing.answers / timing.last_answer_s:.0f}/s"
                )
    rates = {
        shape: [round(t.answers / t.last_answer_s, 1) for t in timings]
        for shape, timings in runs.items()
    }
    medians = {shape: statistics.median(values) for shape, values in rates.items()}
    # Each round's two runs saw about the same load from the machine's other users; rounds
    # apart did not (rates moved 2-3x between rounds on the shared machine).
    each_round = [short / long for long, short in zip(rates["long"], rates["short"], strict=True)]
    return {
        "short_items_vs_long": round(statistics.median(each_round), 3),
        "short_items_vs_long_each_round": [round(ratio, 3) for ratio in each_round],
        "ratio_of_medians": round(medians["short"] / medians["long"], 3),
        "short_answers_per_s": round(medians["short"], 1),
        "long_answers_per_s": round(medians["long"], 1),
        "answers_per_s_each_round": rates,
        "answers": {shape: timings[0].answers for shape, timings in runs.items()},
        "items": {
            "short": paragraphs * 2,
            "long": stories * 2,
        },
        "transactions_per_answer": {
            shape: round(statistics.median(t.transactions / t.answers for t in timings), 3)
            for shape, timings in runs.items()
        },
        "timing": {shape: [asdict(t) for t in timings] for shape, timings in runs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paragraphs", type=int, default=300)
    parser.add_argument("--stories", type=int, default=100, help="long items: 15 turns each")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="evalfleet-short-items-"))
    say(f"logs in {log_dir}")
    setup = Setup(
        log_dir, log_dir, args.stories, LONG_TURNS, args.workers, args.concurrency, 0, "flag"
    )
    out = {
        "benchmark": "short_items",
        **bench_short_items(setup, args.paragraphs, args.stories, args.rounds),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
