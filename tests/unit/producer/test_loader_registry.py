"""The dispatcher: "coqa" goes to the hub, files go to the loader their content calls for."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalfleet.producer.dataset import Dataset
from evalfleet.producer.loaders import coqa_hub
from evalfleet.producer.loaders.coqa_official import dataset_from_official_document
from evalfleet.producer.loaders.hub_file import dataset_from_hub_document
from evalfleet.producer.loaders.registry import load_dataset_spec, reader_for_json
from evalfleet.producer.loaders.squad import dataset_from_squad_document
from evalfleet.schema.errors import DatasetError

FIRST20 = "coqa/coqa-validation-first20.jsonl"
OFFICIAL = "coqa/coqa-dev-v1.0-sample.json"
SQUAD = "squad/squad-dev-v1.1.json"


def test_coqa_goes_to_the_hub_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a stand-in for the hub loader
    calls: list[tuple[str, int | None]] = []

    def fake_hub(split: str, limit: int | None) -> Dataset:
        calls.append((split, limit))
        return Dataset(name="coqa", split=split, stories=())

    monkeypatch.setattr("evalfleet.producer.loaders.registry.load_coqa_hub", fake_hub)
    # When "coqa" is asked for
    dataset = load_dataset_spec("coqa", split="train", limit=7)
    # Then the hub loader gets the split and the limit
    assert calls == [("train", 7)]
    assert dataset.name == "coqa"


def test_coqa_without_the_hub_is_a_dataset_error_suggesting_a_file() -> None:
    # Given no reachable hub on this machine
    if coqa_hub.hub_unreachable_reason("https://huggingface.co") is None:
        pytest.skip("the Hugging Face hub is reachable here")
    # When "coqa" is asked for
    # Then the error suggests a local file
    with pytest.raises(DatasetError, match="--dataset path/to/file.jsonl"):
        load_dataset_spec("coqa")


def test_a_jsonl_file_is_read_as_hub_records(shared_file: Callable[[str], Path]) -> None:
    # Given the hub-schema JSONL sample
    path = str(shared_file(FIRST20))
    # When it is given as the data set
    dataset = load_dataset_spec(path, split="validation")
    # Then it is read with its path as name
    assert (dataset.name, dataset.split) == (path, "validation")
    assert (len(dataset.stories), dataset.question_count) == (20, 297)


def test_a_parquet_file_is_read_as_hub_records(
    shared_file: Callable[[str], Path], tmp_path: Path
) -> None:
    # Given the sample as Parquet
    lines = shared_file(FIRST20).read_text(encoding="utf-8").splitlines()
    parquet = tmp_path / "sample.parquet"
    pq.write_table(pa.Table.from_pylist([json.loads(line) for line in lines]), parquet)
    # When it is given as the data set
    dataset = load_dataset_spec(str(parquet))
    # Then every story is read
    assert dataset.question_count == 297


def test_official_coqa_json_is_sniffed_by_its_turn_ids(shared_file: Callable[[str], Path]) -> None:
    # Given the official CoQA sample
    # When it is given as the data set
    dataset = load_dataset_spec(str(shared_file(OFFICIAL)))
    # Then it was read as official CoQA: four references per question
    assert dataset.question_count == 12
    assert all(len(q.references) == 4 for q in dataset.stories[0].questions)


def test_squad_json_is_sniffed_by_its_paragraphs(shared_file: Callable[[str], Path]) -> None:
    # Given the SQuAD dev set
    # When it is given as the data set, with a limit
    dataset = load_dataset_spec(str(shared_file(SQUAD)), limit=10)
    # Then it was read as SQuAD
    assert [s.key for s in dataset.stories][:2] == ["1973_oil_crisis#0", "1973_oil_crisis#1"]
    assert len(dataset.stories) == 10


def test_hub_records_in_a_json_file_are_sniffed_by_their_string_questions(
    shared_file: Callable[[str], Path], tmp_path: Path
) -> None:
    # Given the hub-schema sample as a JSON list
    lines = shared_file(FIRST20).read_text(encoding="utf-8").splitlines()
    path = tmp_path / "sample.json"
    path.write_text(json.dumps([json.loads(line) for line in lines]), encoding="utf-8")
    # When it is given as the data set
    dataset = load_dataset_spec(str(path), limit=5)
    # Then it was read as hub records
    assert [s.key for s in dataset.stories] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("document", "reader"),
    [
        ({"data": [{"title": "T", "paragraphs": []}]}, dataset_from_squad_document),
        ({"data": [{"story": "S", "questions": [{"turn_id": 1}]}]}, dataset_from_official_document),
        (
            [{"story": "S", "questions": [{"input_text": "Q", "turn_id": 1}]}],
            dataset_from_official_document,
        ),
        ({"data": [{"story": "S", "questions": ["Q"]}]}, dataset_from_hub_document),
        ([{"story": "S", "questions": ["Q"]}], dataset_from_hub_document),
        ([{"something": "else"}], dataset_from_hub_document),
    ],
    ids=["squad", "official-data", "official-list", "hub-data", "hub-list", "unknown-records"],
)
def test_json_formats_are_told_apart_by_their_first_record(
    document: object, reader: object
) -> None:
    # Given a parsed JSON document
    # When its reader is chosen
    # Then it is the one for its format (unknown records go to the hub reader, which says why)
    assert reader_for_json(document, "x.json") is reader


def test_the_file_name_given_is_the_data_set_name(
    shared_file: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a relative path
    shutil.copy(shared_file(OFFICIAL), tmp_path / "dev.json")
    monkeypatch.chdir(tmp_path)
    # When it is loaded
    dataset = load_dataset_spec("dev.json", split="dev")
    # Then the name is the path exactly as given
    assert (dataset.name, dataset.split) == ("dev.json", "dev")


def test_an_unknown_name_is_a_dataset_error(tmp_path: Path) -> None:
    # Given a name that is neither "coqa" nor a file
    missing = str(tmp_path / "nope.jsonl")
    # When it is asked for
    # Then the error says what is accepted
    with pytest.raises(DatasetError) as error:
        load_dataset_spec(missing)
    assert str(error.value) == (
        f"unknown data set '{missing}': use 'coqa' or a path to a .jsonl/.json/.parquet file"
    )


def test_an_unsupported_extension_is_a_dataset_error(tmp_path: Path) -> None:
    # Given a CSV file
    path = tmp_path / "data.csv"
    path.write_text("a,b\n", encoding="utf-8")
    # When it is asked for
    # Then the error names the file and the extension
    with pytest.raises(DatasetError, match=r"data\.csv: unsupported file type '\.csv'"):
        load_dataset_spec(str(path))


@pytest.mark.parametrize("limit", [0, -3])
def test_a_limit_that_is_not_positive_is_a_dataset_error(limit: int) -> None:
    # Given a limit of zero or less
    # When any data set is asked for
    # Then it is refused before anything is read
    with pytest.raises(DatasetError) as error:
        load_dataset_spec("coqa", limit=limit)
    assert str(error.value) == f"--limit must be a positive number, got {limit}"
