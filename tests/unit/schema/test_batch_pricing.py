"""Batch prices: half the synchronous price unless set per model (file or option)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalfleet.schema.errors import ConfigurationError
from evalfleet.schema.pricing import (
    BATCH_DISCOUNT,
    batch_price_table,
    cost_usd,
    parse_price,
    price_table,
)

MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"


def test_a_model_without_its_own_batch_price_costs_half_in_batch_mode() -> None:
    sync = price_table(None, {})
    batch = batch_price_table(None, sync, {})
    assert BATCH_DISCOUNT == 0.5
    assert batch[MODEL] == (sync[MODEL][0] / 2, sync[MODEL][1] / 2)
    # And a run's cost at the batch price is half the synchronous one for the same tokens
    assert cost_usd(batch[MODEL], 1000, 100) == pytest.approx(cost_usd(sync[MODEL], 1000, 100) / 2)  # type: ignore[operator]


def test_batch_prices_are_set_per_model_by_the_file_and_by_the_option(tmp_path: Path) -> None:
    file = tmp_path / "prices.json"
    file.write_text(json.dumps({"org/a": [1.0, 2.0, 0.6, 1.6], "org/b": [1.0, 2.0]}))
    sync = price_table(str(file), {})
    override = dict([parse_price("org/c=0.1,0.2", "--batch-price")])
    batch = batch_price_table(str(file), {**sync, "org/c": (1.0, 1.0)}, override)
    assert sync["org/a"] == (1.0, 2.0)
    assert batch["org/a"] == (0.6, 1.6)  # its own, from the file
    assert batch["org/b"] == (0.5, 1.0)  # half its synchronous price
    assert batch["org/c"] == (0.1, 0.2)  # the option's


def test_a_price_file_with_three_numbers_is_refused_with_the_file_named(tmp_path: Path) -> None:
    file = tmp_path / "prices.json"
    file.write_text(json.dumps({"org/a": [1.0, 2.0, 3.0]}))
    with pytest.raises(ConfigurationError, match=r"price table .*prices.json: .*2 or 4 prices"):
        price_table(str(file), {})


def test_a_malformed_batch_price_option_names_the_option() -> None:
    with pytest.raises(ConfigurationError, match="--batch-price 'org/a=1'"):
        parse_price("org/a=1", "--batch-price")
