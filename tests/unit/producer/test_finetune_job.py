"""A fine-tuning job id resolves to its output model, through the real `together` client."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import together

from evalfleet.producer.finetune_job import resolve_finetuned_model
from evalfleet.schema.errors import ConfigurationError


def client_answering(status_code: int, body: dict[str, Any], seen: list[str]) -> together.Together:
    """A together client whose HTTP calls are answered by a fixed response."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(status_code, content=json.dumps(body).encode())

    transport = httpx.MockTransport(handler)
    return together.Together(
        api_key="k", base_url="http://test", max_retries=0,
        http_client=httpx.Client(transport=transport),
    )  # fmt: skip


def job(status: str, output: str | None = "me/llama-ft-abc") -> dict[str, Any]:
    return {"id": "ft-123", "status": status, "user_id": "u1", "model_output_name": output}


def test_a_completed_job_resolves_to_its_output_model() -> None:
    # Given a completed fine-tuning job
    seen: list[str] = []
    client = client_answering(200, job("completed"), seen)
    # When its model is resolved
    model = resolve_finetuned_model(client, "ft-123")
    # Then it is the job's output model, read from GET /v1/fine-tunes/{id}
    assert model == "me/llama-ft-abc"
    assert seen == ["GET /v1/fine-tunes/ft-123"]


@pytest.mark.parametrize("status", ["pending", "queued", "running", "error", "cancelled"])
def test_a_job_that_has_not_completed_is_refused_naming_the_job_and_its_status(
    status: str,
) -> None:
    # Given a job that is not completed
    client = client_answering(200, job(status, output=None), [])
    # When its model is resolved, then it is refused with the job id and its status
    with pytest.raises(ConfigurationError, match=f"ft-123 is {status}, not completed"):
        resolve_finetuned_model(client, "ft-123")


def test_an_unknown_job_is_a_configuration_error() -> None:
    # Given an API that does not know the job
    client = client_answering(404, {"error": {"message": "job not found"}}, [])
    # When its model is resolved, then the error names the job
    with pytest.raises(ConfigurationError, match="no fine-tuning job ft-404"):
        resolve_finetuned_model(client, "ft-404")


def test_a_completed_job_without_an_output_model_is_refused() -> None:
    client = client_answering(200, job("completed", output=None), [])
    with pytest.raises(ConfigurationError, match="without an output model name"):
        resolve_finetuned_model(client, "ft-123")
