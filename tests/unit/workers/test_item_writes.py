"""How a delivery's answers reach the database: through the process's group commit, its
last ones at once (SQLite, and the simulator over real HTTP)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.schema.lifecycle import ItemClose
from evalfleet.schema.models import Answer, Item, ItemState
from evalfleet.schema.payloads import HistoryMode, RunConfig
from evalfleet.schema.settings import Settings
from evalfleet.simulator.config import SIM_BASE, SimConfig
from evalfleet.simulator.server import SimServer
from evalfleet.workers.answering import answer_turns
from evalfleet.workers.delivery import start_delivery
from evalfleet.workers.group_commit import GroupCommitWriter
from evalfleet.workers.resources import Resources

QUESTIONS = [(f"What is thing {n}?", f"thing {n}") for n in range(1, 7)]
STORIES = {"s0": ("wikipedia", "Tom had a cat. The cat was black.", QUESTIONS)}


class RecordingWriter(GroupCommitWriter):
    """The real writer, noting for each write its rows (answers, judgements), whether it was
    urgent and whether it carried the item's close, and counting its transactions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[tuple[int, bool]] = []
        self.closes: list[ItemClose | None] = []
        self.judged: list[int] = []
        self.transactions = 0

    def write(
        self,
        answers: Sequence[dict[str, Any]],
        responses: Sequence[dict[str, Any]],
        urgent: bool = False,
        close: ItemClose | None = None,
        judgements: Sequence[dict[str, Any]] = (),
    ) -> bool:
        self.writes.append((len(answers), urgent))
        self.closes.append(close)
        self.judged.append(len(judgements))
        return super().write(answers, responses, urgent, close, judgements)

    def _commit(self, batch: Any) -> None:
        self.transactions += 1
        super()._commit(batch)


@pytest.mark.parametrize("history", [HistoryMode.GOLD, HistoryMode.MODEL])
def test_an_items_last_answers_are_committed_at_once_the_others_wait_for_company(
    tmp_path: Path, history: HistoryMode
) -> None:
    # Given an item of six turns, and a worker's resources on SQLite and the simulator
    url, sessions = database(tmp_path)
    with SimServer(SimConfig(latency_ms_mean=20, latency_distribution="exponential")) as sim:
        config = RunConfig(models={"base": SIM_BASE}, base_url=sim.base_url, history=history)
        run_id = create_run(sessions, tiny_dataset(STORIES), config)
        with sessions() as session:
            item_id = session.scalars(select(Item.id).where(Item.run_id == run_id)).one()
        settings = Settings(_env_file=None)
        resources = Resources(settings, sessions.kw["bind"], sessions, 4, None)
        writer = resources.writer = RecordingWriter(sessions)
        delivery = start_delivery(sessions, item_id, settings)
        assert delivery.work is not None

        commits: list[int] = []
        event.listen(sessions.kw["bind"], "commit", lambda _c: commits.append(1))

        # When the delivery answers every turn
        may_be_last = answer_turns(delivery.work, resources, attempt=1)

    # Then all six answers are stored, and the item is done with its six API calls, the
    # run's only item: its close may be the run's last
    with sessions() as session:
        item = session.get_one(Item, item_id)
        assert (item.state, item.api_calls) == (ItemState.DONE.value, 6)
        stored = session.scalars(select(Answer.turn).where(Answer.run_id == run_id)).all()
    assert sorted(stored) == list(range(1, 7))
    assert sum(rows for rows, _ in writer.writes) == 6
    assert may_be_last is True
    # And the item closed with its last answers: no transaction but the group commit's
    assert writer.closes[-1] == ItemClose(item_id, run_id, calls=6)
    assert not any(writer.closes[:-1])
    assert len(commits) == writer.transactions
    # And the last write did not wait out the group commit's window; in `gold` mode the
    # earlier ones did (nothing waits on them), in `model` mode each next turn waits
    assert writer.writes[-1][1] is True
    if history is HistoryMode.GOLD:
        assert not any(urgent for _, urgent in writer.writes[:-1])
    else:
        assert all(urgent for _, urgent in writer.writes)
