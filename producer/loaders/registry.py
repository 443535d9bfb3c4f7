"""Which loader reads a `--dataset` value: "coqa" (the hub), or a file told apart by its content."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from evalfleet.producer.dataset import Dataset
from evalfleet.producer.loaders._common import check_limit, read_json, records_of
from evalfleet.producer.loaders.coqa_hub import load_coqa_hub
from evalfleet.producer.loaders.coqa_official import dataset_from_official_document
from evalfleet.producer.loaders.hub_file import dataset_from_hub_document, load_hub_file
from evalfleet.producer.loaders.squad import dataset_from_squad_document
from evalfleet.schema.errors import DatasetError

HUB_NAME = "coqa"


class DocumentReader(Protocol):
    """Turns a parsed JSON document into a Dataset (one per JSON format)."""

    def __call__(
        self, document: object, *, name: str, split: str, limit: int | None
    ) -> Dataset: ...


def load_dataset_spec(dataset: str, split: str = "validation", limit: int | None = None) -> Dataset:
    """The first `limit` (default: all) stories of "coqa" (the hub) or of a data file.

    For a file, the name is the path as given and `split` is only a label.
    """
    check_limit(limit)
    if dataset == HUB_NAME:
        return load_coqa_hub(split, limit)
    path = Path(dataset)
    if not path.is_file():
        raise DatasetError(
            f"unknown data set '{dataset}': use '{HUB_NAME}' or a path to a "
            ".jsonl/.json/.parquet file"
        )
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".parquet"):
        return load_hub_file(dataset, split, limit)
    if suffix == ".json":
        document = read_json(path)
        reader = reader_for_json(document, dataset)
        return reader(document, name=dataset, split=split, limit=limit)
    raise DatasetError(
        f"{dataset}: unsupported file type '{suffix}': use a .jsonl, .json or .parquet file"
    )


def reader_for_json(document: object, name: str) -> DocumentReader:
    """The reader for a JSON document's format, judged by its first record.

    SQuAD articles have `paragraphs`; official CoQA questions are objects with a `turn_id`;
    anything else is read as hub-schema records, which reports exactly what a record lacks.
    """
    records = records_of(document, name)
    first = records[0] if records else None
    if not isinstance(first, dict):
        return dataset_from_hub_document
    if isinstance(document, dict) and "paragraphs" in first:
        return dataset_from_squad_document
    questions = first.get("questions")
    if (
        "story" in first
        and isinstance(questions, list)
        and questions
        and isinstance(questions[0], dict)
        and "turn_id" in questions[0]
    ):
        return dataset_from_official_document
    return dataset_from_hub_document
