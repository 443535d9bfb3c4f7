"""Local copies of hub-schema data: JSON Lines, JSON (a list or {"data": [...]}) and Parquet."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

from evalfleet.producer.dataset import Dataset
from evalfleet.producer.loaders._common import (
    Place,
    check_limit,
    read_bytes,
    read_json,
    read_text,
    records_of,
)
from evalfleet.producer.loaders.hub_record import dataset_from_hub_records
from evalfleet.schema.errors import DatasetError


def load_hub_file(path: str | Path, split: str = "validation", limit: int | None = None) -> Dataset:
    """The first `limit` (default: all) stories of a hub-schema file, chosen by its extension."""
    check_limit(limit)
    file, origin = Path(path), str(path)
    suffix = file.suffix.lower()
    if suffix == ".jsonl":
        records = _jsonl_records(file, origin, limit)
    elif suffix == ".parquet":
        records = _parquet_records(file, origin, limit)
    else:
        return dataset_from_hub_document(read_json(file), name=origin, split=split, limit=limit)
    return dataset_from_hub_records(records, name=origin, split=split, origin=origin)


def dataset_from_hub_document(
    document: object, *, name: str, split: str, limit: int | None
) -> Dataset:
    """The stories of a parsed JSON document holding hub-schema records; `name` is its path."""
    records = (
        (record, Place(name, f"record {index}"))
        for index, record in enumerate(records_of(document, name)[:limit])
    )
    return dataset_from_hub_records(records, name=name, split=split, origin=name)


def _jsonl_records(path: Path, origin: str, limit: int | None) -> Iterator[tuple[object, Place]]:
    # Split on "\n" only: str.splitlines() would also split on U+2028, which JSON allows in strings.
    index = 0
    for line_number, line in enumerate(read_text(path).split("\n"), start=1):
        if limit is not None and index >= limit:
            return
        if not line.strip():
            continue
        place = Place(origin, f"record {index} (line {line_number})")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise place.error(f"invalid JSON at column {exc.colno}: {exc.msg}") from None
        yield record, place
        index += 1


def _parquet_records(path: Path, origin: str, limit: int | None) -> Iterator[tuple[object, Place]]:
    import pyarrow.parquet as pq  # deferred: only Parquet input pays for importing pyarrow

    data = read_bytes(path)
    try:
        table = pq.read_table(io.BytesIO(data))
    except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise DatasetError(f"{origin}: not a readable Parquet file ({exc})") from None
    if limit is not None:
        table = table.slice(0, limit)
    for index, record in enumerate(table.to_pylist()):
        yield record, Place(origin, f"record {index}")
