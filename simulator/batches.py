"""Together-shaped files and batches for the simulator (docs/architecture.md, "Simulator").

`POST /v1/files` answers the `together` client's upload as Together does: a 302 to an
upload URL (`PUT /sim/uploads/{id}`) and `POST /v1/files/{id}/preprocess`; a multipart body
with a `file` part (OpenAI's shape) is stored at once. `GET /v1/files/{id}[/content]`,
`POST /v1/batches`, `GET /v1/batches[/{id}]`. A batch is VALIDATING, then IN_PROGRESS, and
COMPLETED `completion_delay_s` after its creation; its lines are then answered by the chat
handler itself (the same generation as chat completions, not counted as chat requests),
and `error_share` of them, drawn per (custom_id, times asked), go to the error file instead.
`GET /sim/batch-stats` counts uploads, batches created and lines answered."""

from __future__ import annotations

import email.parser
import email.policy
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evalfleet.simulator import protocol
from evalfleet.simulator.handler import (
    SimHandler,
    SimRequest,
    SimResponse,
    _authorized,
    _Outcome,
    json_response,
)

__all__ = ["BATCH_PATHS", "BatchService", "BatchSimConfig"]

BATCH_PATHS = ("/v1/files", "/v1/batches", "/sim/uploads", "/sim/batch-stats")


@dataclass(frozen=True)
class BatchSimConfig:
    completion_delay_s: float = 1.0  # from creation to COMPLETED
    error_share: float = 0.0  # share of lines answered in the error file, 0..1
    error_status: int = 503  # their status code
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_share <= 1.0:
            raise ValueError(f"error_share must be within 0..1, got {self.error_share}")
        if self.completion_delay_s < 0:
            raise ValueError(f"completion_delay_s must be >= 0, got {self.completion_delay_s}")


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    content: bytes | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "file", "bytes": len(self.content or b""),
            "created_at": self.created_at, "filename": self.filename, "FileType": "jsonl",
            "purpose": self.purpose, "processing_status": "COMPLETED",
        }  # fmt: skip


@dataclass
class _Job:
    id: str
    input_file_id: str
    endpoint: str
    authorization: str
    started: float = field(default_factory=time.monotonic)
    status: str = "VALIDATING"
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed_at: str | None = None

    def body(self, delay_s: float) -> dict[str, Any]:
        share = 1.0 if delay_s <= 0 else min(1.0, (time.monotonic() - self.started) / delay_s)
        return {
            "id": self.id, "input_file_id": self.input_file_id, "endpoint": self.endpoint,
            "status": self.status, "progress": 100.0 if self.status == "COMPLETED" else
            round(99 * share, 1), "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id, "completed_at": self.completed_at,
        }  # fmt: skip


class BatchService:
    """The files and batches endpoints of one simulator; thread-safe."""

    def __init__(self, chat: SimHandler, config: BatchSimConfig | None = None) -> None:
        self.chat = chat
        self.config = config or BatchSimConfig()
        self.paths = BATCH_PATHS
        self._files: dict[str, _File] = {}
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._asked: Counter[str] = Counter()  # batch lines seen per custom_id
        self._counts = {"files_uploaded": 0, "batches_created": 0, "lines_answered": 0,
                        "lines_failed": 0}  # fmt: skip

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def handle(self, request: SimRequest, path: str) -> SimResponse:
        if path == "/sim/batch-stats":
            return json_response(200, self.stats())
        if path.startswith("/sim/uploads/") and request.method == "PUT":
            return self._put_upload(path.removeprefix("/sim/uploads/"), request.body)
        if not _authorized(self.chat.config.required_api_key, request.headers):
            return json_response(401, protocol.invalid_api_key_error())
        parts = path.strip("/").split("/")  # v1, files|batches, id, action
        if parts[1] == "files":
            return self._files_endpoint(request, parts[2:])
        return self._batches_endpoint(request, parts[2:])

    # --- files -----------------------------------------------------------------------------

    def _files_endpoint(self, request: SimRequest, rest: list[str]) -> SimResponse:
        if request.method == "POST" and not rest:
            return self._create_file(request)
        with self._lock:
            file = self._files.get(rest[0]) if rest else None
        if file is None:
            return _missing("file", rest[0] if rest else "")
        if request.method == "POST" and rest[1:] == ["preprocess"]:
            return json_response(200, file.body())
        if request.method == "GET" and rest[1:] == ["content"]:
            content = file.content or b""
            return _raw(content)
        return json_response(200, file.body())

    def _create_file(self, request: SimRequest) -> SimResponse:
        fields = _multipart(request.headers, request.body)
        purpose = fields.get("purpose", b"batch-api").decode(errors="replace")
        name = fields.get("file_name", b"upload.jsonl").decode(errors="replace")
        file = _File(f"file-{uuid.uuid4().hex}", name, purpose, fields.get("file"))
        with self._lock:
            self._files[file.id] = file
            if file.content is not None:
                self._counts["files_uploaded"] += 1
        if file.content is not None:
            return json_response(200, file.body())
        host = next((v for k, v in request.headers.items() if k.lower() == "host"), "127.0.0.1")
        headers = {"Location": f"http://{host}/sim/uploads/{file.id}",
                   "X-Together-File-Id": file.id}  # fmt: skip
        return SimResponse(302, {"Content-Type": "application/json", **headers}, b"{}")

    def _put_upload(self, file_id: str, content: bytes) -> SimResponse:
        with self._lock:
            file = self._files.get(file_id)
            if file is not None:
                file.content = content
                self._counts["files_uploaded"] += 1
        return json_response(200, {}) if file is not None else _missing("file", file_id)

    # --- batches ---------------------------------------------------------------------------

    def _batches_endpoint(self, request: SimRequest, rest: list[str]) -> SimResponse:
        delay = self.config.completion_delay_s
        if request.method == "POST" and not rest:
            return self._create_batch(request)
        if not rest:
            with self._lock:
                jobs = list(self._jobs.values())
            return json_response(200, [job.body(delay) for job in jobs])
        with self._lock:
            job = self._jobs.get(rest[0])
            if job is None:
                return _missing("batch", rest[0])
            self._advance(job)
            return json_response(200, job.body(delay))

    def _create_batch(self, request: SimRequest) -> SimResponse:
        try:
            params = json.loads(request.body)
            file_id, endpoint = params["input_file_id"], params["endpoint"]
        except (ValueError, KeyError, TypeError):
            return _invalid("expected a JSON body with input_file_id and endpoint")
        if endpoint != "/v1/chat/completions":
            return _invalid(f"unsupported endpoint {endpoint!r}")
        authorization = next(
            (v for k, v in request.headers.items() if k.lower() == "authorization"), ""
        )
        with self._lock:
            file = self._files.get(file_id)
            if file is None or file.content is None:
                return _invalid(f"input file {file_id!r} was not uploaded")
            job = _Job(f"batch-{uuid.uuid4().hex}", file_id, endpoint, authorization)
            self._jobs[job.id] = job
            self._counts["batches_created"] += 1
            return json_response(200, {"job": job.body(self.config.completion_delay_s)})

    def _advance(self, job: _Job) -> None:
        """Move the job on by the time elapsed; at the end answer every line (under the lock:
        a poll during the work waits for the files)."""
        if job.status == "COMPLETED":
            return
        elapsed = time.monotonic() - job.started
        if elapsed < self.config.completion_delay_s:
            job.status = (
                "VALIDATING" if elapsed < self.config.completion_delay_s / 10 else ("IN_PROGRESS")
            )
            return
        output, errors = self._answer_lines(job)
        job.output_file_id = self._store(f"{job.id}-output.jsonl", output)
        job.error_file_id = self._store(f"{job.id}-errors.jsonl", errors) if errors else None
        job.status = "COMPLETED"
        job.completed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def _store(self, name: str, lines: list[dict[str, Any]]) -> str:
        content = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        file = _File(f"file-{uuid.uuid4().hex}", name, "batch-api", content)
        self._files[file.id] = file
        return file.id

    def _answer_lines(self, job: _Job) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        output: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        content = self._files[job.input_file_id].content or b""
        for raw in content.splitlines():
            if not raw.strip():
                continue
            line = json.loads(raw)
            name = line.get("custom_id")
            self._asked[str(name)] += 1
            # Drawn per (custom_id, how often it was asked): a retry of a failed line
            # draws again, and a run's errors are the same from one run to the next.
            draw = random.Random(f"{self.config.seed}:{name}:{self._asked[str(name)]}").random()
            if draw < self.config.error_share:
                status = self.config.error_status
                errors.append(_error_line(name, status, "simulated batch line failure"))
                continue
            chat = SimRequest(
                "POST", "/v1/chat/completions", {"Authorization": job.authorization},
                json.dumps(line.get("body")).encode(),
            )  # fmt: skip
            # The chat handler's own answer, without its request counters: a batch line
            # is not a chat-completion request.
            response = self.chat._chat(chat, _Outcome())
            if response is None or response.status != 200:
                status = response.status if response is not None else 500
                message = response.body.decode(errors="replace") if response else "no answer"
                errors.append(_error_line(name, status, message))
                continue
            output.append({
                "id": f"req-{uuid.uuid4().hex}", "custom_id": name,
                "response": {"status_code": 200, "body": json.loads(response.body)},
            })  # fmt: skip
        self._counts["lines_answered"] += len(output)
        self._counts["lines_failed"] += len(errors)
        return output, errors


def _error_line(name: object, status: int, message: str) -> dict[str, Any]:
    return {"custom_id": name, "error": {"code": status, "message": message[:500]}}


def _multipart(headers: Mapping[str, str], body: bytes) -> dict[str, bytes]:
    """A multipart/form-data body's fields by name (empty when it is not multipart)."""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if not content_type.startswith("multipart/"):
        return {}
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


def _raw(content: bytes) -> SimResponse:
    return SimResponse(200, {"Content-Type": "application/octet-stream"}, content)


def _missing(what: str, name: str) -> SimResponse:
    error = protocol.error_body(f"no {what} {name!r}", "invalid_request_error", "not_found")
    return json_response(404, error)


def _invalid(message: str) -> SimResponse:
    return json_response(400, protocol.error_body(message, "invalid_request_error"))
