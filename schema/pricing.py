"""Dollars per million input and output tokens, by model: a built-in table for common
Together models, overridden by a JSON file (EVALFLEET_PRICES) or `--price MODEL=IN,OUT`."""

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


def parse_price(text: str) -> tuple[str, tuple[float, float]]:
    """`MODEL=IN,OUT` (dollars per million tokens)."""
    model, sep, prices = text.rpartition("=")
    parts = prices.split(",")
    try:
        if not sep or not model or len(parts) != 2:
            raise ValueError
        price_in, price_out = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigurationError(
            f"--price {text!r}: expected MODEL=IN,OUT in $ per 1M tokens"
        ) from None
    if price_in < 0 or price_out < 0:
        raise ConfigurationError(f"--price {text!r}: prices cannot be negative")
    return model, (price_in, price_out)


def price_table(
    file: str | None, overrides: Mapping[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    table = dict(BUILT_IN)
    if file:
        try:
            loaded = json.loads(Path(file).read_text(encoding="utf-8"))
            table.update({str(m): (float(p[0]), float(p[1])) for m, p in loaded.items()})
        except (OSError, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise ConfigurationError(
                f'price table {file}: expected a JSON object {{"model": [in, out]}}: {exc}'
            ) from exc
    table.update(overrides)
    return table


def cost_usd(
    prices: tuple[float, float] | None, prompt_tokens: int, completion_tokens: int
) -> float | None:
    if prices is None:
        return None
    return (prompt_tokens * prices[0] + completion_tokens * prices[1]) / 1_000_000
