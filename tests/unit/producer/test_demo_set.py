"""The CoQA demo set inside the package: it loads, holds only redistributable sources, and
carries its attribution and licence texts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from evalfleet.producer.demo_set import (
    ATTRIBUTION_FILE,
    LICENSE_FILES,
    REDISTRIBUTABLE_SOURCES,
    demo_data_file,
    load_demo_set,
)


def _records() -> list[dict[str, object]]:
    with demo_data_file() as path:
        lines = path.read_text(encoding="utf-8").split("\n")
    return [json.loads(line) for line in lines if line.strip()]


def test_the_demo_set_loads_with_the_hub_file_loader() -> None:
    # When the packaged set is loaded
    data = load_demo_set()
    # Then it holds 8 stories and 123 questions, keyed by their place in the validation split
    assert len(data.stories) == 8
    assert data.question_count == 123
    assert all(story.key.startswith("coqa-validation-") for story in data.stories)
    assert data.name.endswith("coqa-demo.jsonl")
    # And a limit takes the first stories
    assert [s.key for s in load_demo_set(2).stories] == [s.key for s in data.stories[:2]]


def test_only_redistributable_sources_and_all_three_of_them() -> None:
    sources = {story.source for story in load_demo_set().stories}
    # Never mctest or race: their licences forbid redistribution
    assert sources <= set(REDISTRIBUTABLE_SOURCES)
    assert sources == {"wikipedia", "gutenberg", "cnn"}


def test_attribution_names_the_paper_every_story_its_source_and_licence() -> None:
    with demo_data_file(ATTRIBUTION_FILE) as path:
        attribution = path.read_text(encoding="utf-8")
    assert "Reddy" in attribution and "Chen" in attribution and "Manning" in attribution
    assert "Changes made" in attribution
    table = [line for line in attribution.splitlines() if line.startswith("|")]
    rows = {line.split("|")[1].strip(" `"): line for line in table}
    for story in load_demo_set().stories:
        row = rows[story.key]
        assert f"| {story.source} |" in row
        assert f"| {REDISTRIBUTABLE_SOURCES[story.source]} |" in row


def test_every_licence_text_is_shipped() -> None:
    for licence in set(REDISTRIBUTABLE_SOURCES.values()):
        with demo_data_file(LICENSE_FILES[licence]) as path:
            assert path.is_file()
            assert len(path.read_text(encoding="utf-8")) > 1000  # the text, not only a name


def test_records_are_coqa_validation_records_unedited_but_for_their_id(
    shared_file: Callable[[str], Path],
) -> None:
    # Given the first 20 records of the CoQA validation split
    first20 = shared_file("coqa/coqa-validation-first20.jsonl").read_text(encoding="utf-8")
    originals = [json.loads(line) for line in first20.split("\n") if line.strip()]
    for record in _records():
        # Then each demo record is the one its id names, with only the id added
        position = int(str(record.pop("id")).removeprefix("coqa-validation-"))
        assert record == originals[position]
    # And every redistributable record among those 20 is in the demo set
    kept = [r for r in originals if r["source"] in REDISTRIBUTABLE_SOURCES]
    assert len(kept) == len(_records())
