"""The simulator's judge (`evalfleet/sim-judge`): a deterministic grade from the references
in the judge prompt, served through the same endpoint, faults and rate limits as the
readers."""

from __future__ import annotations

import json

import pytest

from evalfleet.simulator.config import SIM_JUDGE, SimConfig
from evalfleet.simulator.handler import SimHandler, SimRequest
from evalfleet.simulator.judge import declines, grade
from evalfleet.workers.judge_prompt import build_judge_messages, read_judge_reply

STORY = "Cotton was a white kitten. She lived in a barn with her mother and five sisters."


@pytest.mark.parametrize(
    ("references", "answer", "verdict"),
    [
        # the reference inside a sentence, as normalized tokens (case, articles, punctuation)
        (["in a barn"], "She lived IN THE BARN, with her mother.", "correct"),
        (["white"], "She was white.", "correct"),
        # a paraphrase with high token F1 against one of several references
        (["five sisters", "her five sisters and mother"], "with five of her sisters", "correct"),
        # a part of a word is not the reference
        (["cat"], "a category", "incorrect"),
        (["New York"], "New Jersey", "incorrect"),
        (["yes"], "No, she did not.", "incorrect"),
        # declining, in the prompt's word or a chat model's
        (["white"], "unknown", "not_attempted"),
        (["white"], "I don't know.", "not_attempted"),
        (["white"], "The story does not say.", "not_attempted"),
        (["white"], "", "not_attempted"),
        # no references: the story does not answer; only declining is right
        ([], "Not stated in the story.", "correct"),
        ([], "Her father was Tom.", "incorrect"),
    ],
)
def test_the_judge_grades_from_the_references(
    references: list[str], answer: str, verdict: str
) -> None:
    graded, reason = grade(references, answer)
    assert graded == verdict
    assert reason and "\n" not in reason


def test_a_long_answer_that_mentions_not_knowing_is_a_claim_not_a_refusal() -> None:
    answer = "The story says her mother did not know that the kitten was hiding in the barn."
    assert declines("unknown") and not declines(answer)


def judge_request(handler: SimHandler, answer: str, references: list[str]) -> tuple[int, str]:
    messages = build_judge_messages("Where did she live?", STORY, references, answer)
    body = json.dumps({"model": SIM_JUDGE, "messages": messages, "max_tokens": 96}).encode()
    response = handler.handle(SimRequest("POST", "/v1/chat/completions", {}, body))
    assert response is not None
    if response.status != 200:
        return response.status, ""
    return 200, json.loads(response.body)["choices"][0]["message"]["content"]


def test_the_judge_is_served_like_any_model_and_its_reply_is_in_the_format() -> None:
    # Given a simulator with its default models
    handler = SimHandler(SimConfig())
    # When the judge is asked, twice, about the same answer
    first = judge_request(handler, "She lived in a barn.", ["in a barn"])
    second = judge_request(handler, "She lived in a barn.", ["in a barn"])
    # Then it answers the same two lines, read as a verdict and a reason
    assert first == second and first[0] == 200
    reply = read_judge_reply(first[1])
    assert reply.verdict == "correct" and reply.reason
    assert first[1].count("\n") == 1
    # And its requests count under its own name
    assert handler.stats.snapshot()["by_model"] == {SIM_JUDGE: 2}


def test_the_judge_meets_the_endpoints_faults_and_rate_limits() -> None:
    # Given a simulator that refuses every request with a 429
    faulty = SimHandler(SimConfig(fault_429=1.0))
    # And one that allows the judge one request a minute
    limited = SimHandler(SimConfig(rpm_per_model={SIM_JUDGE: 1}, rate_burst=1))
    # Then the judge is refused by the first, and by the second after its one request
    assert judge_request(faulty, "a barn", ["in a barn"])[0] == 429
    assert judge_request(limited, "a barn", ["in a barn"])[0] == 200
    assert judge_request(limited, "a barn", ["in a barn"])[0] == 429
