"""The CoQA demo set shipped inside the package, so `evalfleet demo` needs nothing but Python.

Eight stories of the CoQA validation split, only from sources whose licence allows
redistribution; producer/demo_data/ATTRIBUTION.md names them and their licences.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib.resources import as_file, files
from pathlib import Path

from evalfleet.producer.dataset import Dataset
from evalfleet.producer.loaders.hub_file import load_hub_file

DEMO_FILE = "coqa-demo.jsonl"
ATTRIBUTION_FILE = "ATTRIBUTION.md"
# CoQA source domain -> the licence its passages may be redistributed under. MCTest and RACE
# passages may not be (their licences forbid it), so they never enter the demo set.
REDISTRIBUTABLE_SOURCES: dict[str, str] = {
    "wikipedia": "CC BY-SA 4.0",
    "gutenberg": "CC BY-SA 4.0",
    "cnn": "Apache 2.0",
}
LICENSE_FILES: dict[str, str] = {
    "CC BY-SA 4.0": "LICENSE-CC-BY-SA-4.0.txt",
    "Apache 2.0": "LICENSE-Apache-2.0.txt",
}


@contextlib.contextmanager
def demo_data_file(name: str = DEMO_FILE) -> Iterator[Path]:
    """A file of producer/demo_data as a real path (extracted first if the package is zipped)."""
    with as_file(files("evalfleet.producer").joinpath("demo_data", name)) as path:
        yield path


def load_demo_set(limit: int | None = None) -> Dataset:
    """The first `limit` (default: all) stories of the demo set; its name is the file's path."""
    with demo_data_file() as path:
        return load_hub_file(path, split="validation", limit=limit)
