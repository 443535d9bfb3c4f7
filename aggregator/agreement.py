"""How the judge's grades agree with EM and F1, per model: what a user reads to audit the judge
(docs/architecture.md, "The judge").

Counted on every answer of the model the judge graded (not only the questions in common: an
audit of the grader, not a comparison of models). EM is read as right or wrong at EM_RIGHT,
as McNemar reads it; F1 agrees with the judge when (F1 >= F1_AGREES_AT) == judged correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalfleet.aggregator.mcnemar import EM_RIGHT
from evalfleet.aggregator.scored import ScoredTurn
from evalfleet.schema.models import JudgeVerdict

__all__ = [
    "EXAMPLES_SHOWN",
    "F1_AGREES_AT",
    "AgreementExample",
    "ModelAgreement",
    "agreement_to_json",
    "compute_agreement",
]

EXAMPLES_SHOWN = 5  # per model: EM-wrong answers the judge called correct, lowest F1 first
F1_AGREES_AT = 0.5


@dataclass(frozen=True)
class AgreementExample:
    """An answer EM calls wrong and the judge correct, with the judge's reason."""

    story_key: str
    source: str
    turn: int
    question: str
    answer: str
    references: tuple[str, ...]
    f1: float  # 0-100
    reason: str | None


@dataclass(frozen=True)
class ModelAgreement:
    """One model's answers as the judge graded them, against EM and F1."""

    label: str
    answers: int  # answered questions
    graded: int  # with a verdict
    failed: int  # the judge could not grade them (an error judgement)
    ungraded: int  # no judgement (yet)
    correct: int
    incorrect: int
    not_attempted: int
    by_rule: int  # EM = 1: graded correct by the cascade, no judge call
    em_wrong: int  # graded answers with EM < EM_RIGHT
    em_wrong_judged_correct: int
    em_right: int
    em_right_judged_incorrect: int  # 0 when the cascade grades them all by rule
    f1_agree: int  # graded answers where judged correct == (F1 >= F1_AGREES_AT)
    examples: tuple[AgreementExample, ...]

    @property
    def em_wrong_correct_share(self) -> float | None:
        return self.em_wrong_judged_correct / self.em_wrong if self.em_wrong else None

    @property
    def em_right_incorrect_share(self) -> float | None:
        return self.em_right_judged_incorrect / self.em_right if self.em_right else None

    @property
    def f1_agreement(self) -> float | None:
        return self.f1_agree / self.graded if self.graded else None


def _model_agreement(label: str, turns: Sequence[ScoredTurn], shown: int) -> ModelAgreement:
    answered = [t for t in turns if t.answer is not None]
    graded = [t for t in answered if t.judge is not None]
    em_wrong = [t for t in graded if (t.em or 0.0) < EM_RIGHT]
    em_right = [t for t in graded if (t.em or 0.0) >= EM_RIGHT]
    overruled = [t for t in em_wrong if t.judge == 1.0]
    # Lowest F1 first: where the judge and the rule disagree most, what an auditor checks.
    chosen = sorted(overruled, key=lambda t: t.f1 or 0.0)[:shown]
    return ModelAgreement(
        label=label,
        answers=len(answered),
        graded=len(graded),
        failed=sum(t.judge_error is not None for t in answered),
        ungraded=sum(t.judge is None and t.judge_error is None for t in answered),
        correct=sum(t.verdict == JudgeVerdict.CORRECT.value for t in graded),
        incorrect=sum(t.verdict == JudgeVerdict.INCORRECT.value for t in graded),
        not_attempted=sum(t.verdict == JudgeVerdict.NOT_ATTEMPTED.value for t in graded),
        by_rule=sum(t.judged_by_rule for t in graded),
        em_wrong=len(em_wrong),
        em_wrong_judged_correct=len(overruled),
        em_right=len(em_right),
        em_right_judged_incorrect=sum(t.judge == 0.0 for t in em_right),
        f1_agree=sum((t.judge == 1.0) == ((t.f1 or 0.0) >= F1_AGREES_AT) for t in graded),
        examples=tuple(
            AgreementExample(
                t.story_key,
                t.source,
                t.turn,
                t.question,
                t.answer or "",
                t.references,
                100 * (t.f1 or 0.0),
                t.judge_reason,
            )
            for t in chosen
        ),  # fmt: skip
    )


def compute_agreement(
    turns: Sequence[ScoredTurn], shown: int = EXAMPLES_SHOWN
) -> tuple[ModelAgreement, ...]:
    """Per model in run order; empty when no answer has a judgement (the run has no judge)."""
    if not any(t.judge is not None or t.judge_error is not None for t in turns):
        return ()
    labels = list(dict.fromkeys(t.label for t in turns))
    return tuple(
        _model_agreement(label, [t for t in turns if t.label == label], shown) for label in labels
    )


def agreement_to_json(models: Sequence[ModelAgreement]) -> dict[str, Any]:
    return {
        m.label: {
            "answers": m.answers,
            "graded": m.graded,
            "could_not_grade": m.failed,
            "not_graded_yet": m.ungraded,
            "correct": m.correct,
            "incorrect": m.incorrect,
            "not_attempted": m.not_attempted,
            "by_rule": m.by_rule,
            "em_wrong": m.em_wrong,
            "em_wrong_judged_correct": m.em_wrong_judged_correct,
            "em_wrong_judged_correct_share": m.em_wrong_correct_share,
            "em_right": m.em_right,
            "em_right_judged_incorrect": m.em_right_judged_incorrect,
            "em_right_judged_incorrect_share": m.em_right_incorrect_share,
            "f1_agrees_at": F1_AGREES_AT,
            "f1_agreement": m.f1_agreement,
            "examples": [
                {
                    "story": e.story_key,
                    "source": e.source,
                    "turn": e.turn,
                    "question": e.question,
                    "answer": e.answer,
                    "references": list(e.references),
                    "f1": e.f1,
                    "reason": e.reason,
                }
                for e in m.examples
            ],  # fmt: skip
        }
        for m in models
    }
