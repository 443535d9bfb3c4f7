"""The hub loader: fails fast and clearly without the hub, and reads hub rows like hub files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest

from evalfleet.producer.loaders import coqa_hub
from evalfleet.producer.loaders.coqa_hub import HUB_DATASET, load_coqa_hub
from evalfleet.producer.loaders.hub_file import load_hub_file
from evalfleet.schema.errors import DatasetError

FIRST20 = "coqa/coqa-validation-first20.jsonl"


def _fake_hub(monkeypatch: pytest.MonkeyPatch, load: Callable[..., object]) -> None:
    """Make the hub reachable and serve `load` in place of `datasets.load_dataset`."""
    monkeypatch.setattr(coqa_hub, "hub_unreachable_reason", lambda endpoint: None)
    monkeypatch.setattr(datasets, "load_dataset", load)


@pytest.mark.timeout(20)
def test_the_real_hub_call_fails_fast_with_a_dataset_error_when_the_hub_is_unreachable() -> None:
    # Given no route to the Hugging Face hub (the case on this machine)
    if coqa_hub.hub_unreachable_reason(datasets.config.HF_ENDPOINT) is None:
        pytest.skip("the Hugging Face hub is reachable here; this test is about when it is not")
    # When the real loader is called
    with pytest.raises(DatasetError) as error:
        load_coqa_hub("validation", limit=3)
    # Then it fails within seconds (not after ~23 s of retries) and says what to do instead
    message = str(error.value)
    assert "Hugging Face hub" in message
    assert HUB_DATASET in message
    assert "--dataset path/to/file.jsonl" in message


@pytest.mark.timeout(20)
def test_offline_mode_without_a_cached_copy_is_a_dataset_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given offline mode and an empty cache
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    # When the real `datasets.load_dataset` is called through the loader
    with pytest.raises(DatasetError) as error:
        load_coqa_hub("validation", limit=None)
    # Then the connection error becomes a clear DatasetError
    message = str(error.value)
    assert "cannot reach the Hugging Face hub" in message
    assert "--dataset path/to/file.jsonl" in message


def test_any_other_hub_failure_is_a_dataset_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a hub that does not know the split
    def unknown_split(path: str, *, split: str) -> object:
        raise ValueError(f'Unknown split "{split}"')

    _fake_hub(monkeypatch, unknown_split)
    # When the loader asks for it
    with pytest.raises(DatasetError) as error:
        load_coqa_hub("test", limit=None)
    # Then the error names the data set, the split and the cause, and suggests a local copy
    message = str(error.value)
    assert "'stanfordnlp/coqa' split 'test'" in message
    assert "Unknown split" in message
    assert "--dataset path/to/file.jsonl" in message


def test_hub_rows_convert_exactly_like_the_same_records_in_a_file(
    monkeypatch: pytest.MonkeyPatch, shared_file: Callable[[str], Path]
) -> None:
    # Given a hub serving the 20-story sample as a real `datasets.Dataset`
    first20 = shared_file(FIRST20)
    records = [json.loads(line) for line in first20.read_text(encoding="utf-8").splitlines()]
    calls: list[tuple[str, str]] = []

    def serve(path: str, *, split: str) -> datasets.Dataset:
        calls.append((path, split))
        return datasets.Dataset.from_list(records)

    _fake_hub(monkeypatch, serve)
    # When the loader reads the train split
    dataset = load_coqa_hub("train", limit=None)
    # Then it asked for stanfordnlp/coqa, and its stories equal the file loader's
    assert calls == [("stanfordnlp/coqa", "train")]
    assert (dataset.name, dataset.split) == ("coqa", "train")
    assert dataset.stories == load_hub_file(first20).stories


def test_the_hub_loader_honours_the_limit(
    monkeypatch: pytest.MonkeyPatch, shared_file: Callable[[str], Path]
) -> None:
    # Given a hub serving the sample
    lines = shared_file(FIRST20).read_text(encoding="utf-8").splitlines()
    table = datasets.Dataset.from_list([json.loads(line) for line in lines])
    _fake_hub(monkeypatch, lambda path, *, split: table)
    # When four stories are asked for
    dataset = load_coqa_hub("validation", limit=4)
    # Then the first four, keyed by their index in the split, come back
    assert [s.key for s in dataset.stories] == ["0", "1", "2", "3"]


def test_a_bad_hub_row_is_reported_with_the_split_and_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a hub row whose story is blank
    row = {"source": "cnn", "story": " ", "questions": ["Q?"], "answers": {"input_text": ["A"]}}
    _fake_hub(monkeypatch, lambda path, *, split: [row])
    # When it is loaded
    with pytest.raises(DatasetError) as error:
        load_coqa_hub("validation", limit=None)
    # Then the message names the hub split, the record and the field
    assert str(error.value) == "stanfordnlp/coqa (validation): record 0: field 'story' is blank"
