"""On real CoQA stories the simulated fine-tuned model beats the simulated base model."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from evalfleet.simulator.config import SIM_BASE, SIM_FINETUNED, SimConfig
from evalfleet.simulator.server import SimServer

SAMPLE = "coqa/coqa-validation-first20.jsonl"
BASE, FINETUNED = SIM_BASE, SIM_FINETUNED


def normalize(text: str) -> list[str]:
    """CoQA normalization: lower-case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return re.sub(r"\b(a|an|the)\b", " ", text).split()


def f1(gold: str, prediction: str) -> float:
    gold_tokens, predicted = normalize(gold), normalize(prediction)
    if not gold_tokens or not predicted:
        return float(gold_tokens == predicted)
    same = sum((Counter(gold_tokens) & Counter(predicted)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_history_requests(path: Path) -> list[tuple[list[dict[str, str]], str]]:
    """One (messages, gold answer) per question: story as system, earlier turns with gold."""
    requests = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        questions, answers = record["questions"], record["answers"]["input_text"]
        for turn, question in enumerate(questions):
            messages = [{"role": "system", "content": record["story"]}]
            for earlier, gold in zip(questions[:turn], answers[:turn], strict=True):
                messages += [
                    {"role": "user", "content": earlier},
                    {"role": "assistant", "content": gold},
                ]
            messages.append({"role": "user", "content": question})
            requests.append((messages, answers[turn]))
    return requests


def test_finetuned_scores_clearly_higher_than_base_on_the_coqa_sample(
    shared_file: Callable[[str], Path],
) -> None:
    # Given the 20-story CoQA sample as gold-history requests
    requests = gold_history_requests(shared_file(SAMPLE))
    scores: dict[str, tuple[float, float]] = {}
    with SimServer(SimConfig()) as sim, httpx.Client(base_url=sim.base_url) as http:
        for model in (BASE, FINETUNED):
            # When every question is asked of each model
            def ask(request: tuple[list[dict[str, str]], str], model: str = model) -> str:
                body = {"model": model, "messages": request[0]}
                reply = http.post("/v1/chat/completions", json=body)
                reply.raise_for_status()
                return str(reply.json()["choices"][0]["message"]["content"])

            with ThreadPoolExecutor(8) as pool:
                predictions = list(pool.map(ask, requests))
            exact = sum(
                normalize(g) == normalize(p)
                for (_, g), p in zip(requests, predictions, strict=True)
            )
            token_f1 = sum(f1(g, p) for (_, g), p in zip(requests, predictions, strict=True))
            scores[model] = (100 * exact / len(requests), 100 * token_f1 / len(requests))
    # Then the fine-tuned model wins clearly on both EM and F1 (measured: EM 0 vs ~20,
    # F1 ~9 vs ~27), and neither is perfect
    base_em, base_f1 = scores[BASE]
    tuned_em, tuned_f1 = scores[FINETUNED]
    assert len(requests) == 297
    assert tuned_em >= base_em + 10, scores
    assert tuned_f1 >= base_f1 + 10, scores
    assert 5 <= base_f1 <= 30 and 15 <= tuned_f1 <= 60, scores
