"""The work the throughput bench measures: stories cycled from the 20-story CoQA sample, asked
of the demo models."""

from __future__ import annotations

import json
from pathlib import Path

from evalfleet.simulator.config import DEMO_MODELS

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "coqa" / "coqa-validation-first20.jsonl"
MODELS = DEMO_MODELS


def build_dataset(out: Path, stories: int, turns: int) -> Path:
    """`stories` hub-schema records cycled from the 20-story sample, exactly `turns` questions
    each (a story's own questions repeated when it has fewer). Copies get a distinct id and a
    marked story text, so that no two requests of a run are identical (the cache sees no
    duplicates)."""
    sample = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    with out.open("w") as file:
        for index in range(stories):
            record = sample[index % len(sample)]
            copy = index // len(sample)
            picks = [i % len(record["questions"]) for i in range(turns)]
            answers = record["answers"]
            row = {
                "id": f"bench-{index}",
                "source": record["source"],
                "story": record["story"] + (f"\n\n(Copy {copy}.)" if copy else ""),
                "questions": [record["questions"][i] for i in picks],
                "answers": {key: [answers[key][i] for i in picks] for key in answers},
            }
            file.write(json.dumps(row) + "\n")
    return out
