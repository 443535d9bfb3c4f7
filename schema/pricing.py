"""Dollars per million input and output tokens, by model: a built-in table for common
Together models, overridden by a JSON file (EVALFLEET_PRICES) or `--price MODEL=IN,OUT`.
Batch prices (batch mode) are BATCH_DISCOUNT of those unless the file (`[in, out, batch_in,
batch_out]`) or `--batch-price MODEL=IN,OUT` sets a model's own."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from evalfleet.schema.errors import ConfigurationError
from evalfleet.simulator.config import DEFAULT_MODELS

# Serverless list prices (USD per 1M tokens, input and output); check your account's.
BUILT_IN: dict[str, tuple[float, float]] = {
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo": (0.18, 0.18),
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo": (0.88, 0.88),
    "meta-llama/Llama-3.3-70B-Instruct-Turbo": (0.88, 0.88),
    "meta-llama/Llama-3.2-3B-Instruct-Turbo": (0.06, 0.06),
    "Qwen/Qwen2.5-7B-Instruct-Turbo": (0.30, 0.30),
    "mistralai/Mistral-7B-Instruct-v0.3": (0.20, 0.20),
    # The simulator's models, priced like an 8B model so the demo shows costs.
    **dict.fromkeys(DEFAULT_MODELS, (0.18, 0.18)),
}


# Together advertises batch jobs at up to 50% off its serverless prices; check your account's.
BATCH_DISCOUNT = 0.5


def parse_price(text: str, flag: str = "--price") -> tuple[str, tuple[float, float]]:
    """`MODEL=IN,OUT` (dollars per million tokens)."""
    model, sep, prices = text.rpartition("=")
    parts = prices.split(",")
    try:
        if not sep or not model or len(parts) != 2:
            raise ValueError
        price_in, price_out = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigurationError(
            f"{flag} {text!r}: expected MODEL=IN,OUT in $ per 1M tokens"
        ) from None
    if price_in < 0 or price_out < 0:
        raise ConfigurationError(f"{flag} {text!r}: prices cannot be negative")
    return model, (price_in, price_out)


def price_table(
    file: str | None, overrides: Mapping[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    table = dict(BUILT_IN)
    table.update({model: (p[0], p[1]) for model, p in _price_file(file).items()})
    table.update(overrides)
    return table


def batch_price_table(
    file: str | None,
    sync_table: Mapping[str, tuple[float, float]],
    overrides: Mapping[str, tuple[float, float]],
) -> dict[str, tuple[float, float]]:
    """Each model's batch price: its own (file entries of four numbers, then `overrides`),
    else BATCH_DISCOUNT of its synchronous price."""
    table = {m: (p[0] * BATCH_DISCOUNT, p[1] * BATCH_DISCOUNT) for m, p in sync_table.items()}
    table.update({m: (p[2], p[3]) for m, p in _price_file(file).items() if len(p) == 4})
    table.update(overrides)
    return table


def _price_file(file: str | None) -> dict[str, tuple[float, ...]]:
    if not file:
        return {}
    try:
        loaded = json.loads(Path(file).read_text(encoding="utf-8"))
        prices = {str(m): tuple(float(x) for x in p) for m, p in loaded.items()}
        if any(len(p) not in (2, 4) or min(p) < 0 for p in prices.values()):
            raise ValueError("each model needs 2 or 4 prices, none negative")
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigurationError(
            f'price table {file}: expected a JSON object {{"model": [in, out]}} or '
            f"[in, out, batch_in, batch_out]: {exc}"
        ) from exc
    return prices


def cost_usd(
    prices: tuple[float, float] | None, prompt_tokens: int, completion_tokens: int
) -> float | None:
    if prices is None:
        return None
    return (prompt_tokens * prices[0] + completion_tokens * prices[1]) / 1_000_000
