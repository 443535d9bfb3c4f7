"""Batch file lines: custom_ids that name one question of one run, and files split within
the provider's limits."""

from __future__ import annotations

import json

import pytest

from evalfleet.workers.batch.lines import (
    MAX_CUSTOM_ID,
    BatchLine,
    CustomIdError,
    QuestionRef,
    custom_id,
    file_content,
    parse_custom_id,
    split_lines,
)


def line(turn: int, question: str = "Who?") -> BatchLine:
    body: dict[str, object] = {
        "model": "org/m", "messages": [{"role": "user", "content": question}], "max_tokens": 8,
    }  # fmt: skip
    return BatchLine(custom_id(7, 3, turn), 3, 11, turn, body, None)


def test_a_custom_id_names_its_run_item_and_turn_and_fits_the_provider_limit() -> None:
    # Given the largest ids a database hands out
    name = custom_id(2**31 - 1, 2**31 - 1, 2**31 - 1)
    # Then it fits in 64 characters and reads back
    assert len(name) <= MAX_CUSTOM_ID
    assert parse_custom_id(custom_id(7, 3, 12), 7) == QuestionRef(7, 3, 12)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("run8-item3-turn1", "belongs to run 8, not run 7"),
        ("request-1", "is not of the form"),
        ("run7-item3-turn1-extra", "is not of the form"),
        (None, "is not of the form"),
    ],
)
def test_a_custom_id_of_another_run_or_shape_is_refused_by_name(text: object, message: str) -> None:
    with pytest.raises(CustomIdError, match=message):
        parse_custom_id(text, 7)


def test_lines_split_at_the_request_limit() -> None:
    # Given five lines and at most two requests per file
    parts = split_lines([line(t) for t in range(5)], max_requests=2)
    # Then three files of 2, 2 and 1, in order
    assert [[ln.turn for ln in part] for part in parts] == [[0, 1], [2, 3], [4]]


def test_lines_split_at_the_byte_limit_and_each_file_stays_under_it() -> None:
    lines = [line(t) for t in range(6)]
    size = len(lines[0].encoded())
    # Given room for two and a half lines per file
    parts = split_lines(lines, max_bytes=int(size * 2.5))
    # Then files of two lines, each under the limit
    assert [len(p) for p in parts] == [2, 2, 2]
    assert all(len(file_content(p)) <= size * 2.5 for p in parts)


def test_a_line_longer_than_the_byte_limit_is_refused_with_its_custom_id() -> None:
    long = line(0, "x" * 500)
    with pytest.raises(ValueError, match=r"run7-item3-turn0: one request of \d+ bytes"):
        split_lines([long], max_bytes=100)


def test_the_file_is_one_json_object_a_line_in_the_batch_line_format() -> None:
    content = file_content([line(0), line(1)])
    decoded = [json.loads(raw) for raw in content.decode().splitlines()]
    assert [d["custom_id"] for d in decoded] == ["run7-item3-turn0", "run7-item3-turn1"]
    assert decoded[0]["body"]["model"] == "org/m" and set(decoded[0]) == {"custom_id", "body"}
