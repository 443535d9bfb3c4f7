"""Failures are never scored (docs/architecture.md, D6): a model whose every request failed
has no score, reported as such, and the other model's scores stand on their own answers."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from unit.aggregator.simulated_run import FAILED, AnswerKey, database, finished_run, tiny_dataset

from evalfleet.aggregator.aggregate import compute_scores
from evalfleet.aggregator.render import render_table
from evalfleet.aggregator.scored import load_scored_turns
from evalfleet.aggregator.summary import run_summary
from evalfleet.simulator.config import DEMO_MODELS

STORIES = {
    "s1": ("cnn", "The mayor opened the bridge on Monday.",
           [("Who opened the bridge?", "the mayor"), ("When?", "Monday")]),
    "s2": ("mctest", "Cotton was a white kitten. She lived in a barn.",
           [("What was Cotton?", "a white kitten"), ("Where did she live?", "in a barn")]),
}  # fmt: skip


def test_a_model_that_answered_nothing_has_no_score_and_the_other_keeps_its_own(
    tmp_path: Path,
) -> None:
    # Given a run where the base model answered every question (one right, one half right,
    # two wrong) and every request of the fine-tuned model failed
    answers: dict[AnswerKey, str | None] = {
        ("base", "s1", 1): "the mayor",
        ("base", "s1", 2): "on Monday night",
        ("base", "s2", 1): "a dog",
        ("base", "s2", 2): "",  # the model's own empty answer: scored, and wrong
    }
    answers |= {("finetuned", key, turn): FAILED for _, key, turn in list(answers)}
    _, sessions = database(tmp_path)
    run_id = finished_run(sessions, tiny_dataset(STORIES), DEMO_MODELS, answers)

    # When the scores are computed, stored and shown
    with sessions() as session:
        computed = {
            (s.label, s.domain): s for s in compute_scores(load_scored_turns(session, run_id))
        }
        summary = run_summary(session, run_id)
    console = Console(width=200, record=True)
    console.print(render_table(summary))
    table = console.export_text()

    # Then the fine-tuned model has no EM or F1 (not 0), in every domain, counted as failed
    for domain in ("cnn", "mctest", "overall"):
        none = computed[("finetuned", domain)]
        assert (none.em, none.f1, none.scored, none.answered) == (None, None, 0, 0)
        assert none.failed == (4 if domain == "overall" else 2)
    stored = summary.models["finetuned"].overall
    assert (stored.em, stored.f1, stored.scored, stored.failed) == (None, None, 0, 4)
    # And the base model is scored over its own four answers, the empty one as wrong
    base = computed[("base", "overall")]
    assert base.scored == 4 and base.em == 25.0
    assert base.f1 is not None and 25.0 < base.f1 < 50.0  # 1 + 2/3 (on Monday night) of 4
    # And the report says so in words, without a 0 for the fine-tuned model
    assert "finetuned: no score: none of its 4 questions answered (4 failed)" in table
    (finetuned_row,) = [line for line in table.splitlines() if DEMO_MODELS["finetuned"] in line]
    assert finetuned_row.split("│")[-3:-1] == ["    - ", "    - "]  # EM and F1: no score
