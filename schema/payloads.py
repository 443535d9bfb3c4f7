"""What crosses a process boundary: task names, the run configuration, the history modes."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

# Producer and workers share only these names: the producer sends by name, never imports workers.
ANSWER_ITEM_TASK = "evalfleet.answer_item"  # args: [item_id]
ANSWER_ITEMS_TASK = "evalfleet.answer_items"  # args: [[item_id, ...]]: several short items
ANSWER_TASKS = (ANSWER_ITEM_TASK, ANSWER_ITEMS_TASK)  # the messages that carry item ids
AGGREGATE_RUN_TASK = "evalfleet.aggregate_run"  # args: [run_id]
POLL_BATCH_TASK = "evalfleet.poll_batch"  # args: [batch_id, poller token]


class RunMode(StrEnum):
    """How the questions reach the API."""

    SYNC = "sync"  # one chat-completion request per question, as it is asked
    BATCH = "batch"  # provider batch files, at the batch price (docs/architecture.md, D10)


class HistoryMode(StrEnum):
    """What earlier turns of the conversation carry when a question is asked."""

    GOLD = "gold"  # earlier questions with their gold answers: the official CoQA protocol
    MODEL = "model"  # earlier questions with the model's own answers: turns run in order
    QUESTIONS = "questions"  # earlier questions only (the Together docs' notebook)
    NONE = "none"  # the current question alone


# The key of the judge's price in RunConfig.prices; no model of a run may take this label.
JUDGE_LABEL = "judge"


class JudgeConfig(BaseModel):
    """The model that grades every answer (issue 14's judge metric), on the run's API or
    another base URL."""

    model: str
    base_url: str | None = None  # None: the run's base URL


class RunConfig(BaseModel):
    """A run's full configuration as stored in `runs.config`. Never holds the API key."""

    models: dict[str, str] = Field(description="model name by label; the first is the reference")
    history: HistoryMode = HistoryMode.GOLD
    mode: RunMode = RunMode.SYNC
    temperature: float = 0.0
    max_tokens: int = 128
    seed: int | None = None
    samples: int = 1  # answers per question, each with its own seed (sample_seed)
    base_url: str | None = None  # None: the Together API
    cache: bool = True  # reuse a stored response for identical (base URL, model, messages, params)
    rpm: float | None = None  # requests per minute per model, cluster-wide; None: adaptive
    tpm: float | None = None  # tokens per minute per model, cluster-wide
    budget_usd: float | None = None  # stop starting items once the run has spent this
    judge: JudgeConfig | None = None  # None: EM and F1 only
    # $ per million (input, output) tokens by label (JUDGE_LABEL: the judge's), fixed when
    # the run is made: in batch mode the batch prices, which every answer is bought at
    prices: dict[str, tuple[float, float] | None] = Field(default_factory=dict)

    def judge_base_url(self) -> str | None:
        """Where the judge is asked: its own base URL, else the run's."""
        if self.judge is None:
            raise ValueError("the run has no judge")
        return self.judge.base_url or self.base_url

    def sample_seed(self, sample: int) -> int | None:
        """Sample k's seed: the run's seed when it asks once (None stays None, so a K = 1
        request is the one it always was); with K > 1 samples, (seed or 0) + k, distinct."""
        if self.samples == 1:
            return self.seed
        return (self.seed or 0) + sample

    def generation_params(self, sample: int = 0) -> dict[str, float | int | None]:
        """Everything besides model and messages that determines sample k's response."""
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.sample_seed(sample),
        }


def samples_error(samples: int, temperature: float, mode: RunMode) -> str | None:
    """Why a run cannot ask each question `samples` times; None when it can."""
    if samples < 1:
        return f"--samples must be at least 1, got {samples}"
    if samples > 1 and temperature <= 0:
        return (
            f"--samples {samples} needs --temperature above 0: at temperature 0 every sample "
            "is the same answer"
        )
    if samples > 1 and mode is RunMode.BATCH:
        return "--samples above 1 is not supported with --mode batch yet: use --mode sync"
    return None
