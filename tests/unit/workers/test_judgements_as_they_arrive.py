"""Judgements stored as they arrive (SQLite, the simulator's reader and a gated judge, both
over real HTTP): while an item's last judge request is out, its other judgements are already
committed, so a worker killed then would not pay for them again (docs/judge.md)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database
from unit.workers.test_item_writes import RecordingWriter
from unit.workers.test_judging import QUESTIONS, deliver, graded, make_run, resources_for

from evalfleet.schema.models import Item, ItemState, Judgement
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.server import SimServer

JUDGE = "evalfleet/gated-judge"
REPLY = {
    "id": "j",
    "object": "chat.completion",
    "model": JUDGE,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "VERDICT: correct\nREASON: it says so"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46},
}
SEEN_WITHIN_S = 5.0  # the group commit waits 50 ms for company: rows show up well before


class GatedJudge(ThreadingHTTPServer):
    """A judge on port 0 that grades every answer correct at once, except its first request,
    answered only once `release` is set: the request still in flight when a worker dies."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Grade)
        self.holding = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._requests = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def is_first(self) -> bool:
        with self._lock:
            self._requests += 1
            return self._requests == 1


class _Grade(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        judge = cast(GatedJudge, self.server)
        if judge.is_first():
            judge.holding.set()
            judge.release.wait(30)
        body = json.dumps(REPLY).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass


@contextmanager
def serving(judge: GatedJudge) -> Iterator[GatedJudge]:
    thread = threading.Thread(target=judge.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield judge
    finally:
        judge.release.set()  # a failed assertion must not leave the held request hanging
        judge.shutdown()
        judge.server_close()
        thread.join(5)


def judgements_seen(sessions: sessionmaker[Session], item_id: int, wanted: int) -> int:
    """The item's committed judgements once there are `wanted`, or after SEEN_WITHIN_S."""
    deadline = time.monotonic() + SEEN_WITHIN_S
    while True:
        with sessions() as session:
            item = session.get_one(Item, item_id)
            seen = session.scalar(
                select(func.count())
                .select_from(Judgement)
                .where(Judgement.run_id == item.run_id, Judgement.model_label == item.model_label)
            )
        assert seen is not None
        if seen >= wanted or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


def test_judgements_are_committed_before_the_last_judge_reply_arrives(tmp_path: Path) -> None:
    # Given the base reader's item over one story, graded by a judge that holds its first
    # request until told
    _, sessions = database(tmp_path)
    with SimServer(SimConfig()) as sim, serving(GatedJudge()) as judge:
        run_id, items = make_run(sessions, sim, judge=JUDGE, judge_url=judge.base_url)
        resources = resources_for(sessions)
        # When the item is delivered, and the judge holds that request
        with ThreadPoolExecutor(1) as pool:
            delivery = pool.submit(deliver, resources, items[0])
            assert judge.holding.wait(30), "the judge was never asked"
            seen = judgements_seen(sessions, items[0], len(QUESTIONS) - 1)
            with sessions() as session:
                meanwhile = session.get_one(Item, items[0]).state
            judge.release.set()
            delivery.result(timeout=30)
    # Then every other answer's judgement was committed while that request was out, and
    # the item was still open
    assert seen == len(QUESTIONS) - 1
    assert meanwhile == ItemState.RUNNING.value
    # And they went through the group commit without hurrying it; the item closed in the
    # write of the last judgement, once it came
    writer = resources.writer
    assert isinstance(writer, RecordingWriter)
    writes = list(zip(writer.writes, writer.judged, writer.closes, strict=True))
    before_close = [urgent for (_, urgent), n, close in writes if n and close is None]
    assert before_close and not any(before_close)
    assert [n for _, n, close in writes if close is not None] == [1]
    rows = graded(sessions, run_id)
    assert len(rows) == len(QUESTIONS) and all(r[3] == "correct" for r in rows)
    with sessions() as session:
        assert session.get_one(Item, items[0]).state == ItemState.DONE.value
