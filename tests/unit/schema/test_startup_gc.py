"""Start-up objects are frozen out of the garbage collector's scans."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from evalfleet.schema.startup_gc import freeze_startup_objects


@pytest.fixture
def unfrozen_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen_afterwards")
def test_objects_alive_at_start_up_leave_the_collected_generations() -> None:
    class StartUp:
        pass

    alive = StartUp()
    freeze_startup_objects()
    made_later = StartUp()
    tracked = {id(o) for o in gc.get_objects()}
    assert gc.get_freeze_count() > 0
    assert id(alive) not in tracked
    assert id(made_later) in tracked
