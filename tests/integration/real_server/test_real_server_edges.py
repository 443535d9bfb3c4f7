"""What a real server does at the edges (docs/architecture.md, "Retry policy"): an answer cut
by max_tokens is the model's, scored and counted as truncated; a story over the context
fails its questions with the server's reason, unscored. SmolLM2 gave no empty answer at
temperature 0 in any prompt tried, so the empty answer is tested against the simulator only
(tests/integration/test_model_output.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from realserver_runs import QUESTIONS, TURNS, TierRun

from evalfleet.aggregator.no_answer import score_answer

TINY = 2  # tokens: shorter than nearly every answer


def test_a_tiny_max_tokens_gives_finish_reason_length_scored_and_counted_as_truncated(
    llama_run: Callable[..., TierRun], stories: Path, record_property: Callable[[str, object], None]
) -> None:
    # When a user runs two stories with --max-tokens 2
    run = llama_run(stories, "--max-tokens", str(TINY))
    summary = run.summary
    for label in ("base", "finetuned"):
        stored = run.of(label)
        cut = [a for a in stored if a.finish_reason == "length"]
        # Then the server cut most answers at 2 tokens, with finish_reason "length"
        assert len(stored) == QUESTIONS and all(a.text is not None for a in stored)
        assert len(cut) > QUESTIONS / 2 and all(a.completion_tokens == TINY for a in cut)
        assert all(a.completion_tokens is not None and a.completion_tokens <= TINY for a in stored)
        # And the cut answers are the model's: answered and scored, and counted as truncated
        reported = summary["models"][label]
        record_property(f"max_tokens {TINY}/{label}", {k: reported[k] for k in (
            "em", "f1", "truncated", "truncated_share")})  # fmt: skip
        assert (reported["answered"], reported["scored"]) == (QUESTIONS, QUESTIONS)
        assert reported["truncated"] == len(cut)
        assert reported["truncated_share"] == round(len(cut) / QUESTIONS, 4)
        scores = [score_answer(a.references, a.text) for a in stored if a.text is not None]
        assert reported["em"] == pytest.approx(100 * sum(s.em for s in scores) / QUESTIONS)
    # And the report warns, naming a --max-tokens to try
    assert any(w.endswith(f"try --max-tokens {2 * TINY}") for w in summary["warnings"])


def test_a_story_over_the_context_fails_its_questions_with_the_servers_reason_unscored(
    llama_run: Callable[..., TierRun], stories: Path
) -> None:
    # Given a story too long for the server's 4096-token context beside two short ones
    short = [json.loads(line) for line in stories.read_text().splitlines()]
    long = {**short[0], "story": " ".join([short[0]["story"]] * 30)}
    stories.write_text("".join(json.dumps(r) + "\n" for r in (long, *short)))
    # When a user runs them
    run = llama_run(stories, "--max-tokens", "32")
    # Then the long story's questions failed with the server's 400, never scored, and the
    # short stories' were answered
    for label in ("base", "finetuned"):
        reported = run.summary["models"][label]
        assert (reported["failed"], reported["answered"]) == (TURNS, QUESTIONS), reported
        assert reported["scored"] == QUESTIONS
        failed = [a for a in run.of(label) if a.text is None]
        assert len(failed) == TURNS and all(a.story == "0" for a in failed)
        assert all("BadRequestError (400)" in (a.error or "") for a in failed)
        assert all("maximum context length is 4096" in (a.error or "") for a in failed)
