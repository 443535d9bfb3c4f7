"""Hub-schema files (JSON Lines, JSON, Parquet) on the real 20-story CoQA validation sample."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalfleet.producer.dataset import Question
from evalfleet.producer.loaders.hub_file import load_hub_file

FIRST20 = "coqa/coqa-validation-first20.jsonl"


@pytest.fixture
def first20(shared_file: Callable[[str], Path]) -> Path:
    return shared_file(FIRST20)


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_jsonl_sample_has_20_stories_and_297_questions(first20: Path) -> None:
    # Given the real hub-schema sample
    # When it is loaded
    dataset = load_hub_file(first20)
    # Then every story and question is there, one reference each, but for the 5 answered
    # "unknown": questions without an answer, stored without references
    assert len(dataset.stories) == 20
    assert dataset.question_count == 297
    counts = Counter(len(q.references) for s in dataset.stories for q in s.questions)
    assert counts == {1: 292, 0: 5}
    assert all(len(q.references) <= 1 for s in dataset.stories for q in s.questions)


def test_stories_are_keyed_by_index_and_keep_source_text_and_turns(first20: Path) -> None:
    # Given the real sample
    # When it is loaded
    dataset = load_hub_file(first20, split="validation")
    # Then keys are indexes in the file, and the first turn is the first question and answer
    first = dataset.stories[0]
    assert [s.key for s in dataset.stories] == [str(i) for i in range(20)]
    assert first.source == "mctest"
    assert first.text.startswith("Once upon a time, in a barn near a farm house")
    assert first.questions[0] == Question(
        turn=1, text="What color was Cotton?", references=("white",)
    )
    assert [q.turn for q in first.questions] == list(range(1, len(first.questions) + 1))


def test_the_dataset_is_named_by_the_path_as_given_and_split_is_a_label(first20: Path) -> None:
    # Given a path given as a string
    # When it is loaded with a split label
    dataset = load_hub_file(str(first20), split="train")
    # Then name and split are passed through
    assert dataset.name == str(first20)
    assert dataset.split == "train"


def test_limit_keeps_the_first_stories_only(first20: Path) -> None:
    # Given the real sample
    # When only three stories are asked for
    dataset = load_hub_file(first20, limit=3)
    # Then they are the first three
    assert [s.key for s in dataset.stories] == ["0", "1", "2"]


def test_json_list_and_data_object_read_the_same_as_jsonl(first20: Path, tmp_path: Path) -> None:
    # Given the sample rewritten as a JSON list and as {"data": [...]}
    records = _records(first20)
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(records), encoding="utf-8")
    as_data = tmp_path / "data.json"
    as_data.write_text(json.dumps({"version": "x", "data": records}), encoding="utf-8")
    # When all three are loaded
    expected = load_hub_file(first20).stories
    # Then the stories are identical
    assert load_hub_file(as_list).stories == expected
    assert load_hub_file(as_data).stories == expected


def test_parquet_reads_the_same_as_jsonl(first20: Path, tmp_path: Path) -> None:
    # Given the sample written to Parquet with pyarrow (nested `answers` becomes a struct)
    parquet = tmp_path / "first20.parquet"
    pq.write_table(pa.Table.from_pylist(_records(first20)), parquet)
    # When both are loaded
    from_parquet = load_hub_file(parquet)
    # Then the stories and the fingerprint match
    assert from_parquet.stories == load_hub_file(first20).stories
    assert from_parquet.fingerprint == load_hub_file(first20).fingerprint


def test_parquet_honours_the_limit(first20: Path, tmp_path: Path) -> None:
    # Given the sample as Parquet
    parquet = tmp_path / "first20.parquet"
    pq.write_table(pa.Table.from_pylist(_records(first20)), parquet)
    # When two stories are asked for
    dataset = load_hub_file(parquet, limit=2)
    # Then two are returned
    assert len(dataset.stories) == 2


def test_an_id_field_becomes_the_story_key(tmp_path: Path) -> None:
    # Given a record with an id
    record = {
        "id": "abc",
        "source": "cnn",
        "story": "A story.",
        "questions": ["Q?"],
        "answers": {"input_text": ["A"], "answer_start": [0], "answer_end": [1]},
    }
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(record) + "\n\n", encoding="utf-8")
    # When it is loaded (a trailing blank line is fine)
    dataset = load_hub_file(path)
    # Then the key is the id
    assert [s.key for s in dataset.stories] == ["abc"]
