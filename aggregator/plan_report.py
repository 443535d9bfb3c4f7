"""`evalfleet plan`: a pilot run's sample sizes (aggregator/planning.py) and what they cost.

Usage per story is measured on the pilot, over all its models (a planned run asks them all):
requests are the API calls sent (retries and 429s included) plus the answers the cache served,
each of which a new story would have to ask for; tokens count every answer, cached or not.
Dollars use the run's stored prices; a model the run has no price for (the demo's) is priced
from the price table (schema/pricing.py), and the plan says so. A judged pilot adds its
judge's calls, tokens (of the calls bought) and dollars: a planned run is graded too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evalfleet.aggregator.paired import pair_turns
from evalfleet.aggregator.planning import MetricPlan, judge_spread, paired_spreads, plan_metric
from evalfleet.aggregator.samples import per_question_means
from evalfleet.aggregator.scored import load_scored_turns
from evalfleet.aggregator.summary import get_run
from evalfleet.schema.accounting import judge_usage, usage_by_label
from evalfleet.schema.errors import EvalfleetError
from evalfleet.schema.models import Answer, RunState, Story
from evalfleet.schema.payloads import JUDGE_LABEL, RunConfig
from evalfleet.schema.pricing import cost_usd

__all__ = ["PlanError", "RunPlan", "StoryUsage", "plan_lines", "plan_run", "plan_to_json"]


class PlanError(EvalfleetError):
    """A run cannot serve as a pilot: not finished, or too few stories answered by both."""


@dataclass(frozen=True)
class StoryUsage:
    """One story's requests, tokens and dollars (all models); `cost_usd` None if unpriced."""

    requests: float
    prompt_tokens: float
    completion_tokens: float
    cost_usd: float | None
    # Per label: (price in, price out) in $ per 1M tokens and where it came from.
    prices: Mapping[str, tuple[tuple[float, float] | None, str | None]]

    def times(self, stories: int) -> dict[str, Any]:
        cost = None if self.cost_usd is None else round(self.cost_usd * stories, 6)
        return {
            "stories": stories,
            "requests": round(self.requests * stories),
            "prompt_tokens": round(self.prompt_tokens * stories),
            "completion_tokens": round(self.completion_tokens * stories),
            "cost_usd": cost,
        }


@dataclass(frozen=True)
class ComparisonPlan:
    reference: str
    other: str
    f1: MetricPlan
    em: MetricPlan
    judge: MetricPlan | None = None  # the judge's accuracy; None without a judge

    def metrics(self) -> list[tuple[str, MetricPlan]]:
        judge = [("Δjudge", self.judge)] if self.judge else []
        return [("ΔF1", self.f1), ("ΔEM", self.em), *judge]


@dataclass(frozen=True)
class RunPlan:
    run_id: int
    dataset: str
    stories: int  # the pilot's
    per_story: StoryUsage
    comparisons: tuple[ComparisonPlan, ...]


def _prices(
    config: RunConfig, table: Mapping[str, tuple[float, float]]
) -> dict[str, tuple[tuple[float, float] | None, str | None]]:
    prices: dict[str, tuple[tuple[float, float] | None, str | None]] = {}
    judge = {JUDGE_LABEL: config.judge.model} if config.judge else {}
    for label, model in {**config.models, **judge}.items():
        stored, listed = config.prices.get(label), table.get(model)
        if stored is not None:
            prices[label] = (stored, "run")
        else:
            prices[label] = (listed, None if listed is None else "price table")
    return prices


def _per_story(
    session: Session, run_id: int, config: RunConfig, stories: int,
    table: Mapping[str, tuple[float, float]],
) -> StoryUsage:  # fmt: skip
    labels = list(config.models)
    prices = _prices(config, table)
    usage = usage_by_label(session, run_id, labels, config.prices)
    rows = session.execute(
        select(
            Answer.model_label, func.count(Answer.id).filter(Answer.cached.is_(True)),
            func.sum(Answer.prompt_tokens), func.sum(Answer.completion_tokens),
        ).where(Answer.run_id == run_id).group_by(Answer.model_label)
    ).all()  # fmt: skip
    requests = Counter({label: u.api_calls for label, u in usage.items()})
    prompt, completion = Counter[str](), Counter[str]()
    for label, cached, p, c in rows:
        requests[label] += int(cached or 0)
        prompt[label], completion[label] = int(p or 0), int(c or 0)
    judging = judge_usage(session, run_id, config)
    if judging is not None:  # a planned run is graded too: the judge's calls and tokens
        labels.append(JUDGE_LABEL)
        # Its calls are in the items' api_calls already (they graded there); what the cache
        # served, a fresh run pays too.
        requests[JUDGE_LABEL] = judging.cached
        prompt[JUDGE_LABEL], completion[JUDGE_LABEL] = (
            judging.prompt_tokens,
            judging.completion_tokens,
        )
    costs = [cost_usd(prices[label][0], prompt[label], completion[label]) for label in labels]
    total_cost = None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
    return StoryUsage(
        requests=sum(requests[label] for label in labels) / stories,
        prompt_tokens=sum(prompt.values()) / stories,
        completion_tokens=sum(completion.values()) / stories,
        cost_usd=None if total_cost is None else total_cost / stories,
        prices=prices,
    )


def plan_run(
    session: Session, run_id: int, mde: float, alpha: float, power: float,
    price_table: Mapping[str, tuple[float, float]],
) -> RunPlan:  # fmt: skip
    """Every other model against the first one: the stories each needs, on F1 and on EM.
    `price_table` (model -> prices) prices a model the run stored no price for."""
    run = get_run(session, run_id)
    if run.state != RunState.DONE.value:
        raise PlanError(f"run {run_id} is {run.state}: plan from a finished (done) run")
    config = RunConfig.model_validate(run.config)
    turns = per_question_means(load_scored_turns(session, run_id))  # a story with its samples
    labels = list(config.models)
    comparisons = []
    for other in labels[1:]:
        questions, _ = pair_turns(turns, labels[0], other)
        if len({q.story_key for q in questions}) < 2:
            raise PlanError(f"run {run_id}: {other} and {labels[0]} share fewer than 2 stories")
        f1, em = paired_spreads(questions)
        judge = judge_spread(questions)
        comparisons.append(
            ComparisonPlan(labels[0], other, plan_metric(f1, mde, alpha, power),
                           plan_metric(em, mde, alpha, power),
                           None if judge is None else plan_metric(judge, mde, alpha, power))
        )  # fmt: skip
    if not comparisons:
        raise PlanError(f"run {run_id} has one model: nothing to compare")
    stories = session.scalar(select(func.count(Story.id)).where(Story.run_id == run_id)) or 0
    per_story = _per_story(session, run_id, config, max(1, stories), price_table)
    return RunPlan(run_id, run.dataset_name, stories, per_story, tuple(comparisons))


def _metric_json(plan: MetricPlan, usage: StoryUsage) -> dict[str, Any]:
    s = plan.spread
    return {
        "pilot_stories": s.stories,
        "pilot_questions": s.questions,
        "pilot_difference": s.difference,
        "story_sd": s.sd,
        "pilot_se": s.se,
        "pilot_mde": plan.pilot_mde,
        "stories": plan.stories,
        "cost": usage.times(plan.stories),
    }


def plan_to_json(plan: RunPlan, mde: float, alpha: float, power: float) -> dict[str, Any]:
    return {
        "run_id": plan.run_id,
        "dataset": plan.dataset,
        "mde": mde,
        "alpha": alpha,
        "power": power,
        "test": "two-sided t on the story-clustered SE, stories - 1 df",
        "pilot_stories": plan.stories,
        "per_story": {
            "requests": plan.per_story.requests,
            "prompt_tokens": plan.per_story.prompt_tokens,
            "completion_tokens": plan.per_story.completion_tokens,
            "cost_usd": plan.per_story.cost_usd,
        },
        "prices": {
            label: {
                "in": None if p is None else p[0],
                "out": None if p is None else p[1],
                "source": source,
            }
            for label, (p, source) in plan.per_story.prices.items()
        },  # fmt: skip
        "comparisons": {
            c.other: {
                "reference": c.reference,
                "f1": _metric_json(c.f1, plan.per_story),
                "em": _metric_json(c.em, plan.per_story),
                **({"judge": _metric_json(c.judge, plan.per_story)} if c.judge else {}),
            }
            for c in plan.comparisons
        },
    }


def _cost_text(cost: Mapping[str, Any]) -> str:
    dollars = "no price" if cost["cost_usd"] is None else f"${cost['cost_usd']:,.2f}"
    return (
        f"{cost['requests']:,} requests, {cost['prompt_tokens']:,} prompt + "
        f"{cost['completion_tokens']:,} completion tokens, {dollars}"
    )


def plan_lines(plan: RunPlan) -> list[str]:
    """The plan for a reader: per comparison and metric, the stories needed and their cost."""
    u = plan.per_story
    dollars = "no price" if u.cost_usd is None else f"${u.cost_usd:.5f}"
    listed = [label for label, (_, source) in u.prices.items() if source == "price table"]
    lines = [
        f"pilot: run {plan.run_id}, {plan.dataset}, {plan.stories} stories; per story "
        f"{u.requests:.1f} requests, {u.prompt_tokens:,.0f} prompt + "
        f"{u.completion_tokens:,.0f} completion tokens, {dollars} (all models)"
        + (f"; the run stored no price for {', '.join(listed)}: list prices" if listed else "")
    ]
    for c in plan.comparisons:
        for name, m in c.metrics():
            s = m.spread
            lines.append(
                f"{c.other} against {c.reference}, {name}: pilot {s.difference:+.1f} points, "
                f"story-level SD {s.sd:.1f} (SE {s.se:.1f} with {s.stories} stories, smallest "
                f"detectable {m.pilot_mde:.1f}); {m.stories:,} stories for {m.power:.0%} power "
                f"to detect {m.mde:g} points (alpha {m.alpha:g}, two-sided, story-clustered): "
                f"{_cost_text(u.times(m.stories))}"
            )
    return lines
