"""Bad input: every problem is a DatasetError naming the file, the record and the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from evalfleet.producer.dataset import Dataset
from evalfleet.producer.loaders.coqa_official import load_coqa_official
from evalfleet.producer.loaders.hub_file import load_hub_file
from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.producer.loaders.squad import load_squad
from evalfleet.schema.errors import DatasetError

Loader = Callable[..., Dataset]


def _hub_record(**changes: object) -> dict[str, object]:
    """A valid hub-schema record of three turns, with fields replaced (or removed, for None)."""
    record: dict[str, object] = {
        "source": "mctest",
        "story": "Cotton was a white kitten.",
        "questions": ["Who?", "What colour?", "Happy?"],
        "answers": {
            "input_text": ["Cotton", "white", "yes"],
            "answer_start": [0, 0, 0],
            "answer_end": [1, 1, 1],
        },
    }
    record.update(changes)
    return {name: value for name, value in record.items() if value is not None}


def _answer(turn: int, text: object) -> dict[str, object]:
    """An official CoQA answer."""
    return {"span_start": 0, "span_end": 1, "span_text": "x", "input_text": text, "turn_id": turn}


def _official_record(**changes: object) -> dict[str, object]:
    """A valid official CoQA record of two turns with one additional answer set."""
    record: dict[str, object] = {
        "source": "mctest",
        "id": "story-1",
        "filename": "mc160.test.41",
        "story": "Cotton was a white kitten.",
        "questions": [{"input_text": "Who?", "turn_id": 1}, {"input_text": "What?", "turn_id": 2}],
        "answers": [_answer(1, "Cotton"), _answer(2, "a kitten")],
        "additional_answers": {"0": [_answer(1, "Cotton"), _answer(2, "kitten")]},
    }
    record.update(changes)
    return record


def _squad_paragraph(**qa_changes: object) -> dict[str, object]:
    """A valid SQuAD paragraph of one question, with fields of the question replaced."""
    qa: dict[str, object] = {"id": "q1", "question": "Who?", "answers": [{"text": "Cotton"}]}
    qa.update(qa_changes)
    return {"context": "Cotton was a white kitten.", "qas": [qa]}


def _squad_document(paragraph: dict[str, object]) -> dict[str, object]:
    return {"version": "1.1", "data": [{"title": "Cotton", "paragraphs": [paragraph]}]}


def _write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _error(load: Loader, path: Path | str, **options: object) -> str:
    with pytest.raises(DatasetError) as error:
        load(path, **options)
    return str(error.value)


# Files that cannot be read at all


@pytest.mark.parametrize("load", [load_hub_file, load_coqa_official, load_squad])
def test_a_missing_file_is_named(load: Loader, tmp_path: Path) -> None:
    # Given a path where no file is
    path = tmp_path / "missing.json"
    # When a loader reads it
    # Then the error names the file
    assert _error(load, path) == f"{path}: no such file"


def test_a_jsonl_line_that_is_not_json_is_reported_with_its_line(tmp_path: Path) -> None:
    # Given a JSONL file whose third line is cut short
    path = tmp_path / "cut.jsonl"
    path.write_text(
        json.dumps(_hub_record()) + "\n" + json.dumps(_hub_record()) + "\n" + '{"story": "x"\n',
        encoding="utf-8",
    )
    # When it is loaded
    # Then the error names the file, the record and its line
    assert _error(load_hub_file, path).startswith(f"{path}: record 2 (line 3): invalid JSON at")


def test_a_json_file_that_is_not_json_is_reported_with_line_and_column(tmp_path: Path) -> None:
    # Given a JSON file with a trailing comma on line 2
    path = tmp_path / "broken.json"
    path.write_text('{"data": [\n  {"story": "x"},\n]}', encoding="utf-8")
    # When it is loaded
    # Then the error names the file, the line and the column
    assert _error(load_coqa_official, path).startswith(f"{path}: invalid JSON at line 3, column 1")


def test_a_file_that_is_not_utf8_is_reported_with_the_byte_offset(tmp_path: Path) -> None:
    # Given a JSONL file with a Latin-1 "é" on its second line
    path = tmp_path / "latin1.jsonl"
    first = (json.dumps(_hub_record()) + "\n").encode()
    path.write_bytes(first + b'{"story": "caf\xe9"}\n')
    # When it is loaded
    message = _error(load_hub_file, path)
    # Then the error names the file, the byte and its offset
    offset = len(first) + len(b'{"story": "caf')
    assert message == f"{path}: not UTF-8 text: invalid byte 0xe9 at byte offset {offset} (line 2)"


def test_a_file_that_is_not_parquet_is_a_dataset_error(tmp_path: Path) -> None:
    # Given a .parquet file that holds JSON
    path = _write_jsonl(tmp_path / "fake.parquet", [_hub_record()])
    # When it is loaded
    # Then the error names the file
    assert _error(load_hub_file, path).startswith(f"{path}: not a readable Parquet file")


def test_a_file_without_records_is_a_dataset_error(tmp_path: Path) -> None:
    # Given an empty JSONL file
    path = tmp_path / "empty.jsonl"
    path.write_text("\n", encoding="utf-8")
    # When it is loaded
    # Then the error says there is nothing to evaluate
    assert _error(load_hub_file, path) == f"{path}: no stories"


def test_a_json_document_that_holds_no_records_is_a_dataset_error(tmp_path: Path) -> None:
    # Given a JSON file holding a plain string
    path = _write_json(tmp_path / "string.json", "hello")
    # When it is loaded
    # Then the error says what was expected
    assert _error(load_hub_file, path) == (
        f"{path}: expected a list of records or an object with a 'data' list, got a string"
    )


# Hub-schema records


@pytest.mark.parametrize("field", ["story", "questions", "answers"])
def test_a_missing_field_is_named_with_record_and_line(field: str, tmp_path: Path) -> None:
    # Given a JSONL file whose fourth record lacks a field
    records = [_hub_record(), _hub_record(), _hub_record(), _hub_record(**{field: None})]
    path = _write_jsonl(tmp_path / "coqa-validation-first20.jsonl", records)
    # When it is loaded
    # Then the error names the file, the record, its line and the field
    assert _error(load_hub_file, path) == f"{path}: record 3 (line 4): missing field '{field}'"


def test_questions_and_answers_of_different_lengths_are_refused(tmp_path: Path) -> None:
    # Given a record with three questions but two answers
    answers = {"input_text": ["Cotton", "white"], "answer_start": [0, 0], "answer_end": [1, 1]}
    path = _write_jsonl(tmp_path / "short.jsonl", [_hub_record(answers=answers)])
    # When it is loaded
    # Then both fields are named
    assert _error(load_hub_file, path) == (
        f"{path}: record 0 (line 1): field 'answers.input_text' has 2 answers "
        "but field 'questions' has 3 questions"
    )


def test_a_blank_story_is_refused(tmp_path: Path) -> None:
    # Given a record whose story is white space
    path = _write_jsonl(tmp_path / "blank.jsonl", [_hub_record(story=" \n ")])
    # When it is loaded
    # Then the field is named
    assert _error(load_hub_file, path) == f"{path}: record 0 (line 1): field 'story' is blank"


def test_a_story_without_questions_is_refused(tmp_path: Path) -> None:
    # Given a record with no questions
    answers: dict[str, list[object]] = {"input_text": [], "answer_start": [], "answer_end": []}
    path = _write_jsonl(tmp_path / "none.jsonl", [_hub_record(questions=[], answers=answers)])
    # When it is loaded
    # Then the field is named
    assert _error(load_hub_file, path) == f"{path}: record 0 (line 1): field 'questions' is empty"


def test_a_question_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    # Given a record whose second question is a number
    path = _write_jsonl(tmp_path / "number.jsonl", [_hub_record(questions=["Who?", 7, "Why?"])])
    # When it is loaded
    # Then the item is named
    assert _error(load_hub_file, path) == (
        f"{path}: record 0 (line 1): field 'questions[1]' must be a string, got a number"
    )


def test_answers_that_are_not_an_object_are_refused(tmp_path: Path) -> None:
    # Given a record whose answers are a plain list, in a JSON {"data": [...]} file
    document = {"data": [_hub_record(), _hub_record(answers=["Cotton", "white", "yes"])]}
    path = _write_json(tmp_path / "list-answers.json", document)
    # When it is loaded
    # Then the record and field are named
    assert _error(load_hub_file, path) == (
        f"{path}: record 1: field 'answers' must be an object, got a list"
    )


def test_a_record_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    # Given a JSONL line holding a list
    path = tmp_path / "list.jsonl"
    path.write_text('["story", "questions"]\n', encoding="utf-8")
    # When it is loaded
    # Then the record is named
    assert _error(load_hub_file, path) == (
        f"{path}: record 0 (line 1): the record must be an object, got a list"
    )


def test_two_records_with_the_same_id_are_refused(tmp_path: Path) -> None:
    # Given two records with the same id
    path = _write_jsonl(tmp_path / "twice.jsonl", [_hub_record(id="a"), _hub_record(id="a")])
    # When it is loaded
    # Then the second one is named with the field its key came from
    assert _error(load_hub_file, path) == (
        f"{path}: record 1 (line 2, id a): field 'id' repeats the story key 'a' "
        "of record 0 (line 1, id a)"
    )


def test_every_record_is_validated_before_anything_is_returned(tmp_path: Path) -> None:
    # Given nineteen good records and a bad last one
    records = [_hub_record() for _ in range(19)] + [_hub_record(story="")]
    path = _write_jsonl(tmp_path / "half-good.jsonl", records)
    # When it is loaded
    # Then nothing is returned: the last record fails the whole file
    assert _error(load_hub_file, path) == f"{path}: record 19 (line 20): field 'story' is blank"


def test_records_beyond_the_limit_are_not_read(tmp_path: Path) -> None:
    # Given two good records and a bad third one
    records = [_hub_record(), _hub_record(), _hub_record(story="")]
    path = _write_jsonl(tmp_path / "tail.jsonl", records)
    # When only the first two are asked for
    dataset = load_hub_file(path, limit=2)
    # Then they load
    assert len(dataset.stories) == 2


def test_a_bad_record_in_a_sniffed_json_file_is_named(tmp_path: Path) -> None:
    # Given a JSON list whose record has no questions field at all
    path = _write_json(tmp_path / "no-questions.json", [_hub_record(questions=None)])
    # When the dispatcher reads it
    # Then the precise field is named, not just "unknown format"
    assert _error(load_dataset_spec, str(path)) == (f"{path}: record 0: missing field 'questions'")


# Official CoQA records


def test_an_official_question_without_a_main_answer_is_refused(tmp_path: Path) -> None:
    # Given an official record whose answers lack turn 2
    record = _official_record(answers=[_answer(1, "Cotton")])
    path = _write_json(tmp_path / "coqa-dev.json", {"version": "1.0", "data": [record]})
    # When it is loaded
    # Then the record (with its id) and the field are named
    assert _error(load_coqa_official, path) == (
        f"{path}: record 0 (id story-1): field 'answers' has no answer with turn_id 2"
    )


def test_official_turn_ids_must_count_up(tmp_path: Path) -> None:
    # Given an official record whose two questions have the same turn_id
    questions = [{"input_text": "Who?", "turn_id": 1}, {"input_text": "What?", "turn_id": 1}]
    document = {"data": [_official_record(questions=questions)]}
    path = _write_json(tmp_path / "coqa-dev.json", document)
    # When it is loaded
    # Then the second turn_id is named
    assert _error(load_coqa_official, path) == (
        f"{path}: record 0 (id story-1): field 'questions[1].turn_id' must be greater than 1 "
        "(turns count up from 1), got 1"
    )


def test_an_official_record_without_an_id_is_refused(tmp_path: Path) -> None:
    # Given an official record without an id
    record = _official_record()
    del record["id"]
    path = _write_json(tmp_path / "coqa-dev.json", {"data": [record]})
    # When it is loaded
    # Then the field is named
    assert _error(load_coqa_official, path) == f"{path}: record 0: missing field 'id'"


def test_an_additional_answer_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    # Given an additional answer whose text is null
    extra = {"0": [{"input_text": "Cotton", "turn_id": 1}, {"input_text": None, "turn_id": 2}]}
    path = _write_json(
        tmp_path / "coqa-dev.json", {"data": [_official_record(additional_answers=extra)]}
    )
    # When it is loaded
    # Then the path to the field is named
    assert _error(load_coqa_official, path) == (
        f"{path}: record 0 (id story-1): field 'additional_answers.0[1].input_text' "
        "must be a string, got null"
    )


# SQuAD records


def test_a_squad_question_without_answers_is_refused(tmp_path: Path) -> None:
    # Given a SQuAD question without answers, not marked is_impossible (SQuAD 2.0 accepts
    # only those: tests/unit/producer/test_loader_squad_v2.py)
    path = _write_json(tmp_path / "squad.json", _squad_document(_squad_paragraph(answers=[])))
    # When it is loaded
    # Then the article, paragraph and field are named
    assert _error(load_squad, path) == (
        f"{path}: article 0 (Cotton), paragraph 0: field 'qas[0].answers' is empty"
    )


def test_a_squad_question_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    # Given a SQuAD question that is a list
    path = _write_json(
        tmp_path / "squad.json", _squad_document(_squad_paragraph(question=["Who?"]))
    )
    # When it is loaded
    # Then the field is named
    assert _error(load_squad, path) == (
        f"{path}: article 0 (Cotton), paragraph 0: field 'qas[0].question' "
        "must be a string, got a list"
    )


def test_a_squad_paragraph_without_context_is_refused(tmp_path: Path) -> None:
    # Given a SQuAD paragraph without context
    paragraph = _squad_paragraph()
    del paragraph["context"]
    path = _write_json(tmp_path / "squad.json", _squad_document(paragraph))
    # When it is loaded
    # Then the field is named
    assert _error(load_squad, path) == (
        f"{path}: article 0 (Cotton), paragraph 0: missing field 'context'"
    )
