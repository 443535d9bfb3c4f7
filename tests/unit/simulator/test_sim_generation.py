"""A simulator closer to real models: per-token latency, answers cut at max_tokens, the
model's own empty, long and non-ASCII answers (simulator.generation)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from click.testing import CliRunner

from evalfleet.cli.main import cli
from evalfleet.simulator.config import SIM_BASE, SIM_FINETUNED, SimConfig
from evalfleet.simulator.generation import LONG_WORDS, generation_s
from evalfleet.simulator.handler import SimHandler, SimRequest
from evalfleet.simulator.text import approx_tokens

STORY = (
    "Tom lived in a small house near the river. He had a red ball that his uncle Peter gave "
    "him. Every morning Tom played with the ball in the park. His sister Ann liked to read."
)


def _messages(question: str = "What color was the ball?") -> list[dict[str, str]]:
    return [{"role": "system", "content": STORY}, {"role": "user", "content": question}]


def _choice(handler: SimHandler, model: str = SIM_BASE, **body: Any) -> dict[str, Any]:
    data = json.dumps({"model": model, "messages": _messages(), **body}).encode()
    response = handler.handle(SimRequest("POST", "/v1/chat/completions", {}, data))
    assert response is not None and response.status == 200
    document = json.loads(response.body.decode("utf-8"))
    choice: dict[str, Any] = document["choices"][0]
    choice["completion_tokens"] = document["usage"]["completion_tokens"]
    return choice


def _answers(config: SimConfig, questions: int = 200) -> list[str]:
    """The verbose model's answers to `questions` different questions."""
    handler = SimHandler(config)
    contents = []
    for i in range(questions):
        data = json.dumps({"model": SIM_BASE, "messages": _messages(f"Who was {i}?")}).encode()
        response = handler.handle(SimRequest("POST", "/v1/chat/completions", {}, data))
        assert response is not None and response.status == 200
        contents.append(json.loads(response.body)["choices"][0]["message"]["content"])
    return contents


def test_the_defaults_change_no_answer() -> None:
    # Given the default settings and every rate given as 0 / Then the answers are the same
    assert _answers(SimConfig(), 30) == _answers(
        SimConfig(empty_answer_rate=0, long_answer_rate=0, unicode_answer_rate=0), 30
    )
    assert _choice(SimHandler(SimConfig()), SIM_FINETUNED)["message"]["content"] == "red"


def test_latency_grows_with_the_tokens_generated() -> None:
    # Given 5 ms per token on top of no base latency
    handler = SimHandler(SimConfig(latency_ms_per_token=5.0))
    # When the verbose model answers in full, then with 2 tokens allowed
    start = time.monotonic()
    full = _choice(handler)
    full_s = time.monotonic() - start
    start = time.monotonic()
    cut = _choice(handler, max_tokens=2)
    cut_s = time.monotonic() - start
    # Then the full answer took at least its tokens' time, the cut one its 2 tokens' time
    assert full["completion_tokens"] > 2
    assert full_s >= full["completion_tokens"] * 0.005 * 0.9
    assert cut_s >= 2 * 0.005 * 0.9 and cut["finish_reason"] == "length"
    # And the time counts only the tokens the max_tokens cut leaves
    assert generation_s("one two three four", None, 10.0) == pytest.approx(0.04)
    assert generation_s("one two three four", 3, 10.0) == pytest.approx(0.03)
    assert generation_s("", None, 10.0) == 0.0


def test_an_answer_longer_than_max_tokens_is_cut_to_them_with_finish_reason_length() -> None:
    # Given every answer long (past the default max_tokens)
    handler = SimHandler(SimConfig(long_answer_rate=1.0))
    # When asked with max_tokens 50 (below the shortest long answer), and without a limit
    cut = _choice(handler, max_tokens=50)
    whole = _choice(handler)
    # Then the first is cut to 50 tokens as the simulator counts them, marked "length"
    assert cut["finish_reason"] == "length" and cut["completion_tokens"] == 50
    assert approx_tokens(cut["message"]["content"]) == 50
    # And the uncut one is the same answer, whole, finished by "stop"
    assert whole["finish_reason"] == "stop"
    assert LONG_WORDS[0] <= approx_tokens(whole["message"]["content"]) <= LONG_WORDS[1] + 30
    assert whole["message"]["content"].split()[:50] == cut["message"]["content"].split()


def test_a_long_answer_starts_with_the_readers_answer() -> None:
    plain = _choice(SimHandler(SimConfig()))["message"]["content"]
    long = _choice(SimHandler(SimConfig(long_answer_rate=1.0)))["message"]["content"]
    assert long.startswith(plain) and len(long.split()) >= LONG_WORDS[0]


def test_empty_answers_come_at_their_rate_with_finish_reason_stop() -> None:
    # Given every answer empty / Then it is "" finished by "stop", no token generated
    choice = _choice(SimHandler(SimConfig(empty_answer_rate=1.0)))
    assert (choice["message"]["content"], choice["finish_reason"]) == ("", "stop")
    assert choice["completion_tokens"] == 0
    # Given 20% / Then about a fifth of 200 different questions get an empty answer
    empty = sum(content == "" for content in _answers(SimConfig(empty_answer_rate=0.2)))
    assert 20 <= empty <= 60


def test_the_same_request_gets_the_same_unusual_answer_as_a_deterministic_model_would() -> None:
    # Given all three quirks at 50%, the same 50 requests asked of two simulators
    config = SimConfig(empty_answer_rate=0.3, long_answer_rate=0.5, unicode_answer_rate=0.5)
    first, second = _answers(config, 50), _answers(config, 50)
    # Then each request gets the same answer (a retry at temperature 0 is no remedy)
    assert first == second
    assert any(a == "" for a in first) and any(len(a.split()) >= LONG_WORDS[0] for a in first)


def test_unicode_answers_hold_non_ascii_text_sent_as_utf8() -> None:
    # Given every answer with non-ASCII text
    handler = SimHandler(SimConfig(unicode_answer_rate=1.0))
    data = json.dumps({"model": SIM_FINETUNED, "messages": _messages()}).encode()
    response = handler.handle(SimRequest("POST", "/v1/chat/completions", {}, data))
    assert response is not None
    # Then the reply is UTF-8 JSON whose answer holds the reader's answer and non-ASCII
    content = json.loads(response.body.decode("utf-8"))["choices"][0]["message"]["content"]
    assert "red" in content and not content.isascii()
    # And over many questions most forms show up, an emoji (4 bytes in UTF-8) among them
    answers = _answers(SimConfig(unicode_answer_rate=1.0), 60)
    assert all(not a.isascii() for a in answers)
    assert any(any(len(ch.encode()) == 4 for ch in a) for a in answers)


@pytest.mark.parametrize(
    ("field", "value"),
    [("empty_answer_rate", 1.5), ("long_answer_rate", -0.1), ("unicode_answer_rate", 2.0),
     ("latency_ms_per_token", -1.0), ("latency_ms_per_token", float("inf"))],
)  # fmt: skip
def test_out_of_range_settings_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        SimConfig(**{field: value})


def test_evalfleet_sim_takes_the_options_and_refuses_a_bad_rate() -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["sim", "--help"])
    assert shown.exit_code == 0
    for option in ("--latency-ms-per-token", "--empty-answer-rate", "--long-answer-rate",
                   "--unicode-answer-rate"):  # fmt: skip
        assert option in shown.output
    refused = runner.invoke(cli, ["sim", "--port", "0", "--empty-answer-rate", "1.5"])
    assert refused.exit_code == 2 and "empty_answer_rate must be within 0..1" in refused.output
