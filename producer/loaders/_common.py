"""Helpers shared by the loaders: reading files, typed field access, and errors that say where."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalfleet.producer.dataset import Dataset, Story
from evalfleet.schema.errors import DatasetError

_JSON_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def json_type_name(value: object) -> str:
    """The JSON name of a value's type, for messages read by people who wrote JSON, not Python."""
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Place:
    """Where a value was read: the file (or hub split), the record, and the field inside it."""

    origin: str
    record: str
    field: str = ""

    def at(self, name: str | int) -> Place:
        """The place of a field (str) or list item (int) inside this value."""
        if isinstance(name, int):
            return Place(self.origin, self.record, f"{self.field}[{name}]")
        return Place(self.origin, self.record, f"{self.field}.{name}" if self.field else name)

    def identified(self, key: str) -> Place:
        """This record's place, also naming its id: "record 3 (line 4, id abc)"."""
        if self.record.endswith(")"):
            return Place(self.origin, f"{self.record[:-1]}, id {key})", self.field)
        return Place(self.origin, f"{self.record} (id {key})", self.field)

    def error(self, problem: str) -> DatasetError:
        """An error naming the file, the record and (inside `problem`) the field."""
        return DatasetError(f"{self.origin}: {self.record}: {problem}")

    def invalid(self, problem: str) -> DatasetError:
        """An error about this value itself: "field 'x' <problem>", or "record <problem>"."""
        subject = f"field '{self.field}'" if self.field else "the record"
        return self.error(f"{subject} {problem}")


def as_string(value: object, place: Place, *, blank_ok: bool = True) -> str:
    if not isinstance(value, str):
        raise place.invalid(f"must be a string, got {json_type_name(value)}")
    if not blank_ok and not value.strip():
        raise place.invalid("is blank")
    return value


def as_int(value: object, place: Place) -> int:
    # bool is an int in Python but never a valid turn number or index in the data.
    if not isinstance(value, int) or isinstance(value, bool):
        raise place.invalid(f"must be an integer, got {json_type_name(value)}")
    return value


def as_bool(value: object, place: Place) -> bool:
    if not isinstance(value, bool):
        raise place.invalid(f"must be true or false, got {json_type_name(value)}")
    return value


def as_list(value: object, place: Place, *, empty_ok: bool = True) -> list[object]:
    if not isinstance(value, list):
        raise place.invalid(f"must be a list, got {json_type_name(value)}")
    if not empty_ok and not value:
        raise place.invalid("is empty")
    return value


class Fields:
    """A JSON object being read field by field; every problem is reported with its place."""

    def __init__(self, value: object, place: Place) -> None:
        if not isinstance(value, Mapping):
            raise place.invalid(f"must be an object, got {json_type_name(value)}")
        self._values: Mapping[str, object] = value
        self.place = place

    def has(self, name: str) -> bool:
        return name in self._values

    def names(self) -> list[str]:
        return list(self._values)

    def get(self, name: str) -> object:
        if name not in self._values:
            raise self.place.error(f"missing field '{self.place.at(name).field}'")
        return self._values[name]

    def string(self, name: str, *, blank_ok: bool = True) -> str:
        return as_string(self.get(name), self.place.at(name), blank_ok=blank_ok)

    def integer(self, name: str) -> int:
        return as_int(self.get(name), self.place.at(name))

    def boolean(self, name: str) -> bool:
        return as_bool(self.get(name), self.place.at(name))

    def sequence(self, name: str, *, empty_ok: bool = True) -> list[object]:
        return as_list(self.get(name), self.place.at(name), empty_ok=empty_ok)

    def mapping(self, name: str) -> Fields:
        return Fields(self.get(name), self.place.at(name))


def items(values: Sequence[object], place: Place) -> Iterator[tuple[object, Place]]:
    """Each item of a list with its own place (`questions[3]`)."""
    for index, value in enumerate(values):
        yield value, place.at(index)


def check_limit(limit: int | None) -> None:
    if limit is not None and limit <= 0:
        raise DatasetError(f"--limit must be a positive number, got {limit}")


def read_bytes(path: Path) -> bytes:
    """The whole file; a missing or unreadable file is a DatasetError."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory, not a data file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc.strerror})") from None


def read_text(path: Path) -> str:
    """The whole file as text; a missing, unreadable or non-UTF-8 file is a DatasetError."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DatasetError(
            f"{path}: not UTF-8 text: invalid byte 0x{data[exc.start]:02x} "
            f"at byte offset {exc.start} (line {line})"
        ) from None
    # Tolerate the byte-order mark some Windows editors write; json.loads rejects it.
    return text.removeprefix("\ufeff")


def read_json(path: Path) -> object:
    """The parsed JSON document in the file."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def records_of(document: object, origin: str) -> list[object]:
    """The records of a JSON document that is a list of records or {"data": [records]}."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and "data" in document:
        data = document["data"]
        if isinstance(data, list):
            return data
        raise DatasetError(f"{origin}: field 'data' must be a list, got {json_type_name(data)}")
    raise DatasetError(
        f"{origin}: expected a list of records or an object with a 'data' list, "
        f"got {json_type_name(document)}"
    )


class StoryCollector:
    """Stories in input order, refusing two with the same key (the key identifies work items)."""

    def __init__(self) -> None:
        self._stories: list[Story] = []
        self._records_by_key: dict[str, str] = {}

    def add(self, story: Story, key_place: Place) -> None:
        """Append a story; `key_place` is the field its key came from, named if it repeats."""
        first = self._records_by_key.setdefault(story.key, key_place.record)
        if first != key_place.record:
            raise key_place.invalid(f"repeats the story key '{story.key}' of {first}")
        self._stories.append(story)

    def dataset(self, name: str, split: str, origin: str) -> Dataset:
        if not self._stories:
            raise DatasetError(f"{origin}: no stories")
        return Dataset(name=name, split=split, stories=tuple(self._stories))
