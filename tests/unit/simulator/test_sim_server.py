"""The simulator over real HTTP on port 0, through the official `together` client and httpx."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import together
from together.types.chat import ChatCompletionMessageParam

from evalfleet.simulator.config import SIM_BASE, SIM_FINETUNED, SIM_JUDGE, SimConfig
from evalfleet.simulator.server import SimServer

BASE, FINETUNED = SIM_BASE, SIM_FINETUNED
STORY = (
    "Tom lived in a small house near the river. "
    "He had a red ball that his uncle Peter gave him. "
    "Every morning Tom played with the ball in the park."
)
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Answer the questions about the story.\n\n" + STORY},
    {"role": "user", "content": "Where did Tom live?"},
    {"role": "assistant", "content": "near the river"},
    {"role": "user", "content": "What color was his ball?"},
]


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig()) as server:
        yield server


def client(sim: SimServer, api_key: str = "local") -> together.Together:
    return together.Together(api_key=api_key, base_url=sim.base_url, max_retries=0, timeout=10)


def test_completions_parse_with_the_official_together_client(sim: SimServer) -> None:
    # Given the simulator and the `together` client pointed at its host-only base URL
    # When both models are asked the same question
    replies = {
        model: client(sim).chat.completions.create(model=model, messages=MESSAGES)
        for model in (BASE, FINETUNED)
    }
    # Then both parse as chat completions, with usage, and the fine-tuned one is concise
    contents: dict[str, str] = {}
    for model, reply in replies.items():
        assert reply.model == model and reply.object == "chat.completion"
        assert reply.choices[0].finish_reason == "stop"
        assert reply.usage is not None and reply.usage.total_tokens > reply.usage.prompt_tokens
        message = reply.choices[0].message
        assert message is not None and message.content is not None
        contents[model] = message.content
    assert contents[FINETUNED] == "red"
    assert len(contents[BASE].split()) > 3


def test_the_same_request_gets_the_same_answer(sim: SimServer) -> None:
    # Given one request body
    body = {"model": BASE, "messages": MESSAGES, "seed": 5, "temperature": 0.8}
    # When it is sent twice
    with httpx.Client(base_url=sim.base_url) as http:
        first = http.post("/v1/chat/completions", json=body).json()
        second = http.post("/v1/chat/completions", json=body).json()
    # Then the answers are identical
    assert first["choices"][0]["message"] == second["choices"][0]["message"]


def test_unknown_model_gets_404_like_together(sim: SimServer) -> None:
    # Given a model the simulator does not serve
    # When the client asks it
    with pytest.raises(together.NotFoundError) as caught:
        client(sim).chat.completions.create(model="nobody/nothing", messages=MESSAGES)
    # Then it surfaces as NotFoundError with Together's error body
    assert caught.value.status_code == 404
    assert caught.value.body == {
        "error": {
            "message": "Unable to access model nobody/nothing. Please visit "
            "https://api.together.ai/models to view the list of supported models.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }


def test_malformed_bodies_get_400_with_the_error_shape(sim: SimServer) -> None:
    # Given bodies that are not JSON, lack messages, or carry bad parameters
    bad_bodies: list[bytes | dict[str, object]] = [
        b"{not json",
        {"model": BASE},
        {"model": BASE, "messages": MESSAGES, "temperature": "hot"},
        {"model": BASE, "messages": MESSAGES, "max_tokens": 0},
    ]
    with httpx.Client(base_url=sim.base_url) as http:
        # When each is posted
        replies = [
            http.post("/v1/chat/completions", content=body)
            if isinstance(body, bytes)
            else http.post("/v1/chat/completions", json=body)
            for body in bad_bodies
        ]
    # Then each gets 400 with Together's error envelope
    for reply in replies:
        assert reply.status_code == 400
        assert reply.json()["error"]["type"] == "invalid_request_error"
        assert set(reply.json()["error"]) == {"message", "type", "param", "code"}


def test_a_prompt_longer_than_the_context_gets_400_like_together() -> None:
    # Given a model with a 20-token context
    with SimServer(SimConfig(context_length={BASE: 20})) as sim:
        # When a longer prompt is sent
        with pytest.raises(together.BadRequestError) as caught:
            client(sim).chat.completions.create(model=BASE, messages=MESSAGES, max_tokens=5)
    # Then Together's input validation message comes back
    assert "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 20" in str(
        caught.value
    )


def test_max_tokens_truncates_with_finish_reason_length(sim: SimServer) -> None:
    # Given the verbose model and a budget of 2 tokens / When it answers
    reply = client(sim).chat.completions.create(model=BASE, messages=MESSAGES, max_tokens=2)
    # Then its answer is cut to 2 words and marked as such
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message is not None and reply.choices[0].message.content
    assert len(reply.choices[0].message.content.split()) == 2


def test_any_key_is_accepted_unless_one_is_required() -> None:
    # Given a simulator that requires the key "right"
    with SimServer(SimConfig(required_api_key="right")) as sim:
        # When the right and a wrong key are used
        ok = client(sim, "right").chat.completions.create(model=FINETUNED, messages=MESSAGES)
        with pytest.raises(together.AuthenticationError) as caught:
            client(sim, "wrong").chat.completions.create(model=FINETUNED, messages=MESSAGES)
        models = httpx.get(f"{sim.base_url}/v1/models")
    # Then only the right one gets through, with Together's 401 body
    assert ok.choices[0].message is not None
    assert caught.value.status_code == 401
    assert caught.value.body == {
        "error": {
            "message": "Invalid API key provided",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert models.status_code == 401


def test_models_endpoint_lists_the_simulated_models_and_the_judge(sim: SimServer) -> None:
    # When the model list is fetched
    listed = httpx.get(f"{sim.base_url}/v1/models").json()
    # Then it is a bare list of chat models: both simulated readers and the judge
    assert {entry["id"] for entry in listed} == {BASE, FINETUNED, SIM_JUDGE}
    for entry in listed:
        assert entry["object"] == "model" and entry["type"] == "chat"
        assert entry["context_length"] == 8192 and entry["display_name"]


def test_extra_models_can_be_configured_by_reader_kind() -> None:
    # Given an extra model served by the concise reader
    models = {"my/model": "concise", BASE: "verbose"}
    with SimServer(SimConfig(models=models)) as sim:
        # When it is asked
        reply = client(sim).chat.completions.create(model="my/model", messages=MESSAGES)
        listed = httpx.get(f"{sim.base_url}/v1/models").json()
    # Then it answers like the fine-tuned reader and is listed
    assert reply.choices[0].message is not None and reply.choices[0].message.content == "red"
    assert {entry["id"] for entry in listed} == {"my/model", BASE}


def test_stats_count_requests_by_model_and_status_and_reset_zeroes_them(sim: SimServer) -> None:
    # Given two good requests and one for an unknown model
    with httpx.Client(base_url=sim.base_url) as http:
        for model in (BASE, FINETUNED, "nobody/nothing"):
            http.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES})
        # When the stats are read, then reset
        counted = http.get("/sim/stats").json()
        http.post("/sim/reset")
        after_reset = http.get("/sim/stats").json()
    # Then they counted each request once, and the reset zeroed them
    assert counted["requests_total"] == 3
    assert counted["by_model"] == {BASE: 1, FINETUNED: 1, "nobody/nothing": 1}
    assert counted["by_status"] == {"200": 2, "404": 1}
    assert sim.stats()["requests_total"] == 0  # the Python view reads the same counters
    assert after_reset["requests_total"] == 0 and after_reset["by_status"] == {}


def test_sixty_four_slow_requests_are_served_concurrently() -> None:
    # Given 1 s of latency per request (long enough for 64 client threads to start,
    # even on a busy machine)
    with SimServer(SimConfig(latency_ms_mean=1000)) as sim:
        body = {"model": FINETUNED, "messages": MESSAGES}
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        start = threading.Barrier(64)
        with httpx.Client(base_url=sim.base_url, limits=limits, timeout=30) as http:

            def post(_: int) -> int:
                start.wait()
                return http.post("/v1/chat/completions", json=body).status_code

            # When 64 requests are sent at once
            with ThreadPoolExecutor(64) as pool:
                codes = list(pool.map(post, range(64)))
        stats = sim.stats()
    # Then all succeed, and all 64 were in flight together (not queued)
    assert codes == [200] * 64
    assert stats["max_in_flight"] == 64


def test_unknown_paths_get_404(sim: SimServer) -> None:
    reply = httpx.get(f"{sim.base_url}/v1/v1/chat/completions")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found"


def test_a_crash_inside_the_simulator_answers_500_instead_of_hanging_up(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a reader that crashes
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("reader bug")

    monkeypatch.setattr("evalfleet.simulator.handler.answer", broken)
    # When a completion is requested
    reply = httpx.post(
        f"{sim.base_url}/v1/chat/completions", json={"model": BASE, "messages": MESSAGES}
    )
    # Then the client gets a 500 with an error body, and the server keeps serving
    assert reply.status_code == 500 and reply.json()["error"]["type"] == "server_error"
    assert httpx.get(f"{sim.base_url}/health").json() == {"status": "ok"}
    assert sim.stats()["by_status"] == {"500": 1}
