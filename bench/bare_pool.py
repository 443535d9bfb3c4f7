"""A reference for the workers' figures: the same requests from a bare pool of threads."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from workload import MODELS

from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.schema.payloads import HistoryMode
from evalfleet.schema.settings import Settings
from evalfleet.workers.api import complete, make_client
from evalfleet.workers.prompts import build_messages
from evalfleet.workers.resources import CONNECTIONS_PER_THREAD


def bare_pool_s(base_url: str, dataset: Path, threads: int, how: str) -> tuple[float, float]:
    """Reference: wall time and this process' CPU seconds of the same gold-mode requests
    from a bare pool of `threads` threads (no queue, database or limiter): what this machine
    and simulator allow. `how`:
    "together" sends each with the workers' own call and clients (`workers.api.complete`, a
    client per thread, made before the clock starts, as the workers' are warm); "httpx" posts
    the JSON with one plain httpx client."""
    requests = []
    for story in load_dataset_spec(str(dataset)).stories:
        questions = [(q.turn, q.text, q.references) for q in story.questions]
        for model in MODELS.values():
            for turn, _, _ in questions:
                messages = build_messages(story.text, questions, turn, HistoryMode.GOLD)
                requests.append((model, messages))
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    shared = httpx.Client(base_url=base_url, limits=limits)
    settings = Settings(_env_file=None)  # a local base URL needs no key
    clients = [make_client(settings, base_url, CONNECTIONS_PER_THREAD) for _ in range(threads)]
    handed_out = itertools.count()
    local = threading.local()

    def ask(request: tuple[str, list[dict[str, str]]]) -> None:
        model, messages = request
        if how == "httpx":
            body = {"model": model, "messages": messages, "temperature": 0.0, "max_tokens": 128}
            shared.post("/v1/chat/completions", json=body).raise_for_status()
            return
        if not hasattr(local, "client"):
            local.client = clients[next(handed_out)]
        complete(local.client, model, messages, 0.0, 128, None)

    with ThreadPoolExecutor(threads) as pool:
        started, cpu_started = time.perf_counter(), time.process_time()
        list(pool.map(ask, requests))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    shared.close()
    return elapsed, cpu
