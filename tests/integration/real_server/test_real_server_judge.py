"""The judge on a real server: SmolLM2-135M-Instruct (llama.cpp) grading the answers of a
tiny run through real workers, Redis and PostgreSQL. A 135M model may not keep the reply
format, so the check is the rows: every answer has exactly one judgement, a verdict or the
stored reason it could not be read, and the share that parsed is recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from realserver_runs import QUESTIONS, LlamaServer, TierRun
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from evalfleet.schema.models import Judgement, JudgeVerdict


def test_a_real_judge_grades_every_answer_once_or_stores_why_it_could_not(
    llama_server: LlamaServer,
    llama_run: Callable[..., TierRun],
    stories: Path,
    postgres_url: str,
    record_property: Callable[[str, object], None],
) -> None:
    # Given the server's first alias as the judge of its own A/A pair
    judge = llama_server.aliases[0]
    # When a user runs two CoQA stories with --judge and waits
    run = llama_run(stories, "--max-tokens", "32", "--judge", judge)
    assert run.summary["state"] == "done", run.summary
    engine = create_engine(postgres_url)
    with Session(engine) as session:
        rows = session.execute(
            select(Judgement.model_label, Judgement.story_id, Judgement.turn, Judgement.judge,
                   Judgement.verdict, Judgement.by_rule, Judgement.error,
                   Judgement.prompt_tokens)
            .where(Judgement.run_id == run.summary["run_id"])
        ).all()  # fmt: skip
    engine.dispose()
    answered = [a for a in run.answers if a.text is not None]
    # Then every answer has exactly one judgement by that judge
    assert len(answered) == 2 * QUESTIONS
    assert len(rows) == len(answered) == len({(r[0], r[1], r[2]) for r in rows})
    assert {r.judge for r in rows} == {judge}
    # And each is a verdict, or an error saying why there is none (never both, never neither)
    assert all((r.verdict is None) != (r.error is None) for r in rows)
    assert {r.verdict for r in rows if r.verdict} <= {v.value for v in JudgeVerdict}
    asked = [r for r in rows if not r.by_rule]
    assert asked and all(r.prompt_tokens for r in asked)  # the server graded them
    parsed = sum(r.verdict is not None for r in asked)
    record_property("judge", {"answers": len(rows), "by_rule": len(rows) - len(asked),
                              "asked": len(asked), "parsed": parsed})  # fmt: skip
