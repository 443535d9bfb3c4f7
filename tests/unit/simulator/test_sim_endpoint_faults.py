"""The endpoint's failures a 200 can hide, and a body cut short: what the simulator sends, and
how the workers' reading of it classes each (docs/architecture.md, "Retry policy")."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
import together
from click.testing import CliRunner

from evalfleet.cli.main import cli
from evalfleet.simulator.config import SIM_FINETUNED, SimConfig
from evalfleet.simulator.server import SimServer
from evalfleet.workers.api import complete
from evalfleet.workers.errors import (
    ContentFilteredError,
    Decision,
    InvalidResponseError,
    classify,
    describe,
)

MESSAGES = [
    {"role": "system", "content": "Tom had a red ball. He played in the park every day."},
    {"role": "user", "content": "What color was the ball?"},
]
BODY = {"model": SIM_FINETUNED, "messages": MESSAGES}


def ask(sim: SimServer) -> None:
    client = together.Together(api_key="local", base_url=sim.base_url, max_retries=0, timeout=10)
    complete(client, SIM_FINETUNED, MESSAGES, 0.0, 64, None)


def test_no_choices_is_a_200_with_an_empty_choice_list_read_as_a_transient_failure() -> None:
    with SimServer(SimConfig(fault_no_choices=1.0)) as sim:
        reply = httpx.post(f"{sim.base_url}/v1/chat/completions", json=BODY)
        with pytest.raises(InvalidResponseError, match="no choices") as raised:
            ask(sim)
        assert sim.stats()["faults"] == {"no_choices": 2}
    assert reply.status_code == 200 and reply.json()["choices"] == []
    assert reply.json()["usage"]["prompt_tokens"] > 0
    assert classify(raised.value) is Decision.TRANSIENT


def test_content_filter_withholds_the_answer_and_fails_the_turn() -> None:
    with SimServer(SimConfig(fault_content_filter=1.0)) as sim:
        reply = httpx.post(f"{sim.base_url}/v1/chat/completions", json=BODY)
        with pytest.raises(ContentFilteredError) as raised:
            ask(sim)
    choice = reply.json()["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("content_filter", "")
    assert classify(raised.value) is Decision.FAIL_TURN


def test_cut_sends_the_headers_and_half_the_body_then_closes_the_socket() -> None:
    # Given a simulator that cuts every response
    with SimServer(SimConfig(fault_cut=1.0)) as sim:
        # When a raw client reads the whole response
        with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as raw:
            data = json.dumps(BODY).encode()
            head = (
                "POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            )
            raw.sendall(head.encode() + data)
            received = b""
            while chunk := raw.recv(65536):  # ends: the server closed the connection
                received += chunk
        # Then it got a 200 whose body stops before the Content-Length it was promised
        headers, _, body = received.partition(b"\r\n\r\n")
        assert headers.startswith(b"HTTP/1.1 200")
        length = next(
            int(line.split(b":")[1]) for line in headers.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )  # fmt: skip
        assert 0 < len(body) < length
        # And the workers see a transient connection failure that says it was cut
        with pytest.raises(together.APIConnectionError) as raised:
            ask(sim)
        assert sim.stats()["faults"] == {"cut": 2}
    assert classify(raised.value) is Decision.TRANSIENT
    assert "connection cut mid-response" in describe(raised.value)


def test_evalfleet_sim_takes_the_new_faults_as_shares_of_requests() -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["sim", "--help"]).output
    for option in ("--fault-no-choices", "--fault-content-filter", "--fault-cut",
                   "--fault-malformed", "--fault-reset"):  # fmt: skip
        assert option in shown
    refused = runner.invoke(cli, ["sim", "--port", "0", "--fault-cut", "1.5"])
    assert refused.exit_code == 2 and "fault_cut must be within 0..1" in refused.output
