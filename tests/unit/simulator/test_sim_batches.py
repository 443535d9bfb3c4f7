"""The simulator's files and batches, through the official `together` client: a batch line
gets the chat handler's own answer, not counted as a chat request; a batch completes after
its delay; a share of lines comes back in the error file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import together

from evalfleet.simulator.batches import BatchSimConfig
from evalfleet.simulator.config import SIM_BASE, SimConfig
from evalfleet.simulator.server import SimServer

BODY = {
    "model": SIM_BASE,
    "messages": [
        {"role": "system", "content": "Answer briefly.\n\nTom had a red cat. It slept."},
        {"role": "user", "content": "What color was the cat?"},
    ],
    "max_tokens": 16,
    "temperature": 0.0,
}


def batch_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "batch.jsonl"
    lines = [{"custom_id": f"q{i}", "body": BODY} for i in range(count)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def run_batch(sim: SimServer, path: Path) -> tuple[str, together.Together]:
    client = together.Together(api_key="unit", base_url=sim.base_url, max_retries=0)
    uploaded = client.files.upload(file=path, purpose="batch-api")
    job = client.batches.create(endpoint="/v1/chat/completions", input_file_id=uploaded.id).job
    assert job is not None and job.id is not None
    return job.id, client


def test_a_batch_line_is_answered_as_the_chat_endpoint_answers_without_counting_a_chat_call(
    tmp_path: Path,
) -> None:
    with SimServer(SimConfig(), BatchSimConfig(completion_delay_s=0.3)) as sim:
        # Given the answer of the chat endpoint to one request
        chat = httpx.post(f"{sim.base_url}/v1/chat/completions", json=BODY).json()
        # When a batch of three such lines is uploaded and created
        batch_id, client = run_batch(sim, batch_file(tmp_path, 3))
        early = client.batches.retrieve(batch_id)
        time.sleep(0.4)
        done = client.batches.retrieve(batch_id)
        assert done.output_file_id is not None
        output = client.files.content(done.output_file_id).read()
        chat_calls = sim.stats()["requests_total"]
        stats = httpx.get(f"{sim.base_url}/sim/batch-stats").json()
        listed = [job.id for job in client.batches.list()]
    # Then it was in progress before its delay and completed after it
    assert early.status in ("VALIDATING", "IN_PROGRESS") and done.status == "COMPLETED"
    # And every line holds the chat endpoint's answer, keyed by its custom_id
    lines = [json.loads(raw) for raw in output.splitlines()]
    assert sorted(line["custom_id"] for line in lines) == ["q0", "q1", "q2"]
    want = chat["choices"][0]["message"]["content"]
    assert {line["response"]["body"]["choices"][0]["message"]["content"] for line in lines} == {
        want
    }
    # And only the direct request counted as a chat call
    assert chat_calls == 1
    assert stats == {"files_uploaded": 1, "batches_created": 1, "lines_answered": 3,
                     "lines_failed": 0}  # fmt: skip
    assert listed == [batch_id]


def test_a_share_of_lines_goes_to_the_error_file_with_its_status(tmp_path: Path) -> None:
    config = BatchSimConfig(completion_delay_s=0.0, error_share=1.0, error_status=503)
    with SimServer(SimConfig(), config) as sim:
        batch_id, client = run_batch(sim, batch_file(tmp_path, 2))
        job = client.batches.retrieve(batch_id)
        assert job.error_file_id is not None
        errors = [
            json.loads(raw) for raw in client.files.content(job.error_file_id).read().splitlines()
        ]
    assert [e["error"]["code"] for e in errors] == [503, 503]
    assert job.output_file_id is not None  # an empty output file


def test_bad_batch_requests_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="error_share must be within 0..1"):
        BatchSimConfig(error_share=1.5)
    with SimServer(SimConfig(required_api_key="secret-key")) as sim:
        url = sim.base_url
        unauthorized = httpx.get(f"{url}/v1/batches/batch-x")
        headers = {"Authorization": "Bearer secret-key"}
        unknown = httpx.get(f"{url}/v1/batches/batch-x", headers=headers)
        no_file = httpx.post(
            f"{url}/v1/batches", headers=headers,
            json={"endpoint": "/v1/chat/completions", "input_file_id": "file-x"},
        )  # fmt: skip
    assert unauthorized.status_code == 401
    assert unknown.status_code == 404 and "batch-x" in unknown.text
    assert no_file.status_code == 400 and "was not uploaded" in no_file.text
