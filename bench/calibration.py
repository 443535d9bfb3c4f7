"""Calibration of the paired comparison: A/A false positives and power, on the CoQA sample.

    .venv/bin/python bench/calibration.py [--seeds 200] [--temperature 0.7] [--processes 2]

A/A: the same simulated model twice with sampling noise under two different seeds; the
null hypothesis is true, so at alpha = 0.05 about 5% of comparisons should be declared
significant (the 95% interval on the F1 difference excludes 0). Done for both simulated
models (sim-base: verbose, whose EM hardly varies; sim-finetuned: concise).

Domains: the same A/A pairs compared per source domain as the report does; the family-wise
error is the share of A/A comparisons in which ANY domain is declared significant on F1 after
Holm over the domains with at least 5 stories (target <= alpha), beside the per-domain
(per-comparison) rate and what the uncorrected per-domain flags gave.

Judge: the same A/A pairs on the judge metric. Each sampled answer is graded correct by rule
when EM = 1 (the workers' cascade), else by the simulator's judge model's own grader
(simulator/judge.py: correct when it holds a reference as whole normalized words or has F1 >=
0.6 with one), so sampling noise moves the grades as it moves F1; the rate is the share of
A/A comparisons whose 95% interval on the judge accuracy's difference excludes 0.

Power: sim-base against itself with a known improvement injected (a random share of its
questions answered with the gold answer: F1 and EM become 1 there), and sim-base against
sim-finetuned. The answers come from the simulator's reader called directly with the very
messages and random generators the simulator's server would use (no HTTP: fast).

Prints a few human lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from evalfleet.aggregator.bootstrap import bootstrap_means, resample_counts
from evalfleet.aggregator.no_answer import score_answer
from evalfleet.aggregator.paired import (
    ALPHA,
    DEFAULT_RESAMPLES,
    GroupComparison,
    PairedQuestion,
    compare_domains,
    compare_group,
)
from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.schema.payloads import HistoryMode
from evalfleet.simulator.config import DEFAULT_MODELS, SIM_BASE, SIM_FINETUNED
from evalfleet.simulator.conversation import (
    Conversation,
    greedy_rng,
    parse_messages,
    sampling_rng,
)
from evalfleet.simulator.judge import grade
from evalfleet.simulator.reader import answer
from evalfleet.workers.judge_prompt import CORRECT
from evalfleet.workers.prompts import build_messages

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "coqa" / "coqa-validation-first20.jsonl"
BASE, FINETUNED = SIM_BASE, SIM_FINETUNED
INJECTED_SHARES = (0.01, 0.02, 0.03, 0.05)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Turn:
    story_key: str
    source: str
    turn: int
    messages: list[dict[str, str]]
    conversation: Conversation
    references: tuple[str, ...]


_TURNS: list[Turn] = []  # filled before the worker processes fork


def load_turns(path: Path) -> list[Turn]:
    dataset = load_dataset_spec(str(path))
    turns = []
    for story in dataset.stories:
        questions = [(q.turn, q.text, q.references) for q in story.questions]
        for q in story.questions:
            messages = build_messages(story.text, questions, q.turn, HistoryMode.GOLD)
            turns.append(
                Turn(
                    story.key, story.source, q.turn, messages,
                    parse_messages(messages), q.references,
                )
            )  # fmt: skip
    return turns


Scores = tuple[FloatArray, FloatArray, FloatArray]  # EM, F1 and the judge's grade per question


def judge_grade(references: tuple[str, ...], text: str, em: float) -> float:
    """1.0 when the judge calls the answer correct, else 0.0: EM = 1 by the rule (the
    cascade), every other answer as the simulator's judge model grades it."""
    return float(em == 1.0 or grade(references, text)[0] == CORRECT)


def generate(job: tuple[str, int, float]) -> Scores:
    """EM, F1 and the judge's grade of every question for one (model, sampling seed), as the
    server answers."""
    model, seed, temperature = job
    kind = DEFAULT_MODELS[model]
    em, f1, judge = [], [], []
    for t in _TURNS:
        c = t.conversation
        text = answer(
            kind, c.story, c.question, greedy_rng(model, t.messages), temperature,
            history=c.history,
            sampling_rng=sampling_rng(model, t.messages, seed, temperature),
        )  # fmt: skip
        score = score_answer(t.references, text)
        em.append(score.em)
        f1.append(score.f1)
        judge.append(judge_grade(t.references, text, score.em))
    return np.array(em), np.array(f1), np.array(judge)


def paired(reference: Scores, other: Scores) -> list[PairedQuestion]:
    return [
        PairedQuestion(t.story_key, t.source, t.turn,
                       float(reference[0][i]), float(reference[1][i]),
                       float(other[0][i]), float(other[1][i]),
                       float(reference[2][i]), float(other[2][i]))
        for i, t in enumerate(_TURNS)
    ]  # fmt: skip


def percentile_significant(
    questions: list[PairedQuestion], metric: str, rng: np.random.Generator
) -> bool:
    """The plain 95% percentile interval of the story bootstrap: what calibration replaced."""
    keys = list(dict.fromkeys(q.story_key for q in questions))
    index = {k: i for i, k in enumerate(keys)}
    clusters = np.array([index[q.story_key] for q in questions])
    diff = np.array(
        [getattr(q, f"other_{metric}") - getattr(q, f"reference_{metric}") for q in questions]
    )
    totals = np.bincount(clusters, weights=diff, minlength=len(keys)).astype(np.float64)
    sizes = np.bincount(clusters, minlength=len(keys)).astype(np.float64)
    means = bootstrap_means(totals, sizes, resample_counts(rng, len(keys), DEFAULT_RESAMPLES))
    low, high = np.quantile(means, [ALPHA / 2, 1 - ALPHA / 2])
    return bool(low > 0 or high < 0)


def rate(flags: list[bool]) -> float:
    return round(float(np.mean(flags)), 4) if flags else float("nan")


def raw_significant(group: GroupComparison) -> bool:
    """What a domain's F1 flag was before Holm: its own test at alpha, whatever its stories."""
    return group.f1.p_value is not None and group.f1.p_value < ALPHA


def domain_flags(questions: list[PairedQuestion], rng: np.random.Generator) -> dict[str, Any]:
    """One A/A comparison per domain: any claim after Holm, before it, and each raw test."""
    domains, family, _ = compare_domains(questions, rng, DEFAULT_RESAMPLES)
    tested = [g for g in domains if not g.too_few_stories]
    return {
        "familywise": any(g.f1.significant for g in domains),
        "familywise_unadjusted": any(raw_significant(g) for g in tested),
        "any_domain_uncorrected": any(raw_significant(g) for g in domains),
        "per_domain": [raw_significant(g) for g in tested],
        "family": family,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=200, help="A/A comparisons per model")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--dataset", type=Path, default=SAMPLE)
    args = parser.parse_args()
    started = time.perf_counter()
    _TURNS.extend(load_turns(args.dataset))
    jobs = [(m, s, args.temperature) for m in (BASE, FINETUNED) for s in range(2 * args.seeds)]
    with multiprocessing.get_context("fork").Pool(args.processes) as pool:
        results = dict(zip(jobs, pool.map(generate, jobs, chunksize=8), strict=True))
    generated = time.perf_counter() - started

    rng = np.random.default_rng(12345)
    # Its own stream: the figures above stay what they were without the per-domain ones.
    domain_rng = np.random.default_rng(54321)
    by_domain: dict[str, list[dict[str, Any]]] = {}
    aa: dict[str, dict[str, list[bool]]] = {}
    abs_diff: dict[str, list[float]] = {}
    for model in (BASE, FINETUNED):
        flags: dict[str, list[bool]] = {"f1": [], "em": [], "mcnemar": [], "percentile_f1": [],
                                        "percentile_em": [], "judge": [],
                                        "judge_mcnemar": []}  # fmt: skip
        for s in range(args.seeds):
            a = results[(model, 2 * s, args.temperature)]
            b = results[(model, 2 * s + 1, args.temperature)]
            questions = paired(a, b)
            group = compare_group(questions, "overall", rng, DEFAULT_RESAMPLES)
            flags["f1"].append(group.f1.significant)
            flags["em"].append(group.em.significant)
            flags["mcnemar"].append(group.mcnemar.p_value < ALPHA)
            assert group.judge is not None  # every question is graded for both
            flags["judge"].append(group.judge.accuracy.significant)
            flags["judge_mcnemar"].append(group.judge.mcnemar.p_value < ALPHA)
            flags["percentile_f1"].append(percentile_significant(questions, "f1", rng))
            flags["percentile_em"].append(percentile_significant(questions, "em", rng))
            abs_diff.setdefault(model, []).append(abs(group.f1.difference))
            by_domain.setdefault(model, []).append(domain_flags(questions, domain_rng))
        aa[model] = flags

    power: list[dict[str, Any]] = []
    for share in INJECTED_SHARES:
        detected, true_effect, realized, mdes = [], [], [], []
        for s in range(args.seeds):
            a = results[(BASE, 2 * s, args.temperature)]
            b_em, b_f1, b_judge = (x.copy() for x in results[(BASE, 2 * s + 1, args.temperature)])
            true_effect.append(share * float(np.mean(1 - b_f1)) * 100)
            fixed = rng.random(len(b_f1)) < share
            b_em[fixed], b_f1[fixed], b_judge[fixed] = 1.0, 1.0, 1.0
            questions = paired(a, (b_em, b_f1, b_judge))
            group = compare_group(questions, "overall", rng, DEFAULT_RESAMPLES)
            detected.append(group.f1.significant and group.f1.difference > 0)
            realized.append(group.f1.difference)
            mdes.append(group.f1.mde or float("nan"))
        power.append(
            {
                "share_answered_with_gold": share,
                "expected_f1_difference": round(float(np.mean(true_effect)), 3),
                "mean_realized_f1_difference": round(float(np.mean(realized)), 3),
                "mean_mde_f1": round(float(np.mean(mdes)), 3),
                "detected": rate(detected),
            }
        )
    real = [
        compare_group(
            paired(results[(BASE, 2 * s, args.temperature)],
                   results[(FINETUNED, 2 * s, args.temperature)]),
            "overall", rng, DEFAULT_RESAMPLES,
        )
        for s in range(args.seeds)
    ]  # fmt: skip

    pooled = {k: aa[BASE][k] + aa[FINETUNED][k] for k in aa[BASE]}
    n = len(pooled["f1"])
    domain_runs = by_domain[BASE] + by_domain[FINETUNED]
    out = {
        "benchmark": "calibration",
        "dataset": str(args.dataset.name),
        "stories": len({t.story_key for t in _TURNS}),
        "questions": len(_TURNS),
        "temperature": args.temperature,
        "resamples": DEFAULT_RESAMPLES,
        "alpha": ALPHA,
        "seeds": args.seeds,
        "aa_comparisons": n,
        "aa_false_positive_rate": rate(pooled["f1"]),
        "aa_false_positive_rate_judge": rate(pooled["judge"]),
        "aa_false_positive_rate_em": rate(aa[FINETUNED]["em"]),
        "aa_judge_mcnemar_rate": rate(pooled["judge_mcnemar"]),
        "aa_mcnemar_rate": rate(aa[FINETUNED]["mcnemar"]),
        "aa_percentile_bootstrap_rate": rate(pooled["percentile_f1"]),
        "aa_monte_carlo_se": round(float(np.sqrt(ALPHA * (1 - ALPHA) / n)), 4),
        "familywise_error_domains": rate([d["familywise"] for d in domain_runs]),
        "familywise_error_domains_unadjusted": rate(
            [d["familywise_unadjusted"] for d in domain_runs]
        ),
        "any_domain_significant_uncorrected": rate(
            [d["any_domain_uncorrected"] for d in domain_runs]
        ),
        "aa_domain_false_positive_rate": rate([f for d in domain_runs for f in d["per_domain"]]),
        "holm_domains": domain_runs[0]["family"] if domain_runs else 0,
        "aa_by_model": {
            model: {
                **{f"{k}_rate": rate(v) for k, v in flags.items()},
                "mean_abs_f1_difference": round(float(np.mean(abs_diff[model])), 3),
                "familywise_error_domains": rate([d["familywise"] for d in by_domain[model]]),
            }
            for model, flags in aa.items()
        },
        "power_injected": power,
        "power_finetuned_vs_base": rate([g.f1.significant and g.f1.difference > 0 for g in real]),
        "finetuned_vs_base_mean_f1_difference": round(
            float(np.mean([g.f1.difference for g in real])), 2
        ),
        "generation_s": round(generated, 1),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    print(
        f"A/A, {n} comparisons ({args.seeds} seeds x 2 models, T={args.temperature}): "
        f"F1 interval excludes 0 in {out['aa_false_positive_rate']:.1%} "
        f"(plain percentile bootstrap: {out['aa_percentile_bootstrap_rate']:.1%}); "
        f"McNemar (sim-finetuned) {out['aa_mcnemar_rate']:.1%}; judge accuracy interval "
        f"excludes 0 in {out['aa_false_positive_rate_judge']:.1%} (McNemar on the judge "
        f"{out['aa_judge_mcnemar_rate']:.1%})"
    )
    print(
        f"A/A per domain (Holm over {out['holm_domains']} domains with >= 5 stories): any "
        f"domain significant in {out['familywise_error_domains']:.1%} (family-wise error; "
        f"{out['familywise_error_domains_unadjusted']:.1%} unadjusted; "
        f"{out['any_domain_significant_uncorrected']:.1%} with every domain tested on its own "
        f"as before); per domain test {out['aa_domain_false_positive_rate']:.1%}"
    )
    for p in power:
        print(
            f"injected +{p['expected_f1_difference']:.2f} F1 (MDE {p['mean_mde_f1']:.2f}): "
            f"detected {p['detected']:.0%}"
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
