"""A real model on a real server, in every history mode: SmolLM2-135M-Instruct served by
llama.cpp under two aliases, through real `evalfleet worker` processes, Redis and
PostgreSQL, over two CoQA stories; what a user checks in the stored answers and the report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from realserver_runs import QUESTIONS, TierRun

from evalfleet.aggregator.no_answer import score_answer

MAX_TOKENS = 96  # a short phrase is asked for; a rambling answer is cut, and counted


@pytest.mark.parametrize("history", ["gold", "model", "questions", "none"])
def test_every_question_answered_scored_from_its_answer_and_the_aa_pair_equal(
    history: str,
    llama_run: Callable[..., TierRun],
    stories: Path,
    record_property: Callable[[str, object], None],
) -> None:
    # Given two aliases of the same weights at temperature 0, as base and fine-tuned
    # When a user runs two CoQA stories in this history mode and waits
    run = llama_run(stories, "--history", history, "--max-tokens", str(MAX_TOKENS))
    summary = run.summary
    assert summary["state"] == "done" and summary["history"] == history
    for label in ("base", "finetuned"):
        reported = summary["models"][label]
        record_property(f"{history}/{label}", {k: reported[k] for k in (
            "answered", "failed", "em", "f1", "truncated", "truncated_share")})  # fmt: skip
        stored = run.of(label)
        # Then every question was answered, or failed with a stated reason
        assert reported["answered"] + reported["failed"] == QUESTIONS, reported
        assert len(stored) == reported["answered"] + reported["failed"]
        assert all((a.text is None) != (a.error is None) for a in stored), stored
        assert all(a.error for a in stored if a.text is None)
        # And every answer has its tokens and the server's finish_reason
        answered = [a for a in stored if a.text is not None]
        assert all(a.prompt_tokens and a.prompt_tokens > 0 for a in answered)
        assert all(a.completion_tokens is not None for a in answered)
        assert all(a.finish_reason in ("stop", "length") for a in answered), stored
        cut = [a for a in answered if a.finish_reason == "length"]
        assert reported["truncated"] == len(cut)
        assert all(a.completion_tokens == MAX_TOKENS for a in cut)
        # And the report's EM and F1 are the official scores of the stored answers
        assert_scores_recomputed(run, label)
    # And the A/A pair answered alike: the report finds no difference at all
    assert_no_difference(run)


def assert_scores_recomputed(run: TierRun, label: str) -> None:
    both = {
        (a.story, a.turn)
        for a in run.of("base")
        if a.text is not None
        and any(b.text is not None and (b.story, b.turn) == (a.story, a.turn)
                for b in run.of("finetuned"))
    }  # fmt: skip
    scores = [score_answer(a.references, a.text) for a in run.of(label)
              if a.text is not None and (a.story, a.turn) in both]  # fmt: skip
    reported = run.summary["models"][label]
    assert reported["scored"] == len(scores) > 0
    assert reported["em"] == pytest.approx(100 * sum(s.em for s in scores) / len(scores))
    assert reported["f1"] == pytest.approx(100 * sum(s.f1 for s in scores) / len(scores))


def assert_no_difference(run: TierRun) -> None:
    base = {(a.story, a.turn): a.text for a in run.of("base")}
    other = {(a.story, a.turn): a.text for a in run.of("finetuned")}
    assert base == other  # the same weights, greedy decoding: the same answers
    comparison = run.summary["comparison"]["finetuned"]
    overall = comparison["overall"]
    for metric in ("em", "f1"):
        assert overall[metric]["difference"] == 0.0
        assert overall[metric]["significant"] is False
    assert comparison["verdict"].startswith("no detectable difference")
