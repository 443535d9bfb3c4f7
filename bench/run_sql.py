"""A measured run's figures, read from its database's SQL through PostgreSQL restarts."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from progress import say

from evalfleet.scratch_database import ScratchDatabase


@dataclass
class RunTiming:
    """One measured run, its times in seconds, from SQL (the same machine's clock)."""

    run_id: int
    command_to_done_s: float  # `evalfleet run` started -> state done seen in SQL
    created_to_done_s: float  # run row written by the producer -> state done
    cli_start_s: float  # `evalfleet run` started -> run row written (imports, loading)
    first_answer_s: float  # from the run row
    last_answer_s: float
    aggregation_s: float  # last item done -> state done seen
    answers: int
    answered: int
    api_calls: int
    rate_limited: int
    mean_client_latency_ms: float | None
    cpu: dict[str, float] = field(default_factory=dict)
    postgres_lost: int = 0  # the poller's connection dropped (PostgreSQL restarted): disturbed
    transactions: int = 0  # committed in this database during the run (pg_stat_database)


class RunSql:
    """One connection to a bench database, made again when the server restarted."""

    def __init__(self, database: ScratchDatabase) -> None:
        self.database = database
        self.conn = psycopg.connect(database.libpq_url, autocommit=True)
        self.reconnects = 0  # PostgreSQL restarted under us (another benchmark's chaos)

    def close(self) -> None:
        self.conn.close()

    def last_run_id(self) -> int:
        return int(self.one("SELECT coalesce(max(id), 0) FROM runs")[0])

    def commits(self) -> int:
        """Transactions committed in this database so far (statistics flushed first)."""
        time.sleep(1.1)  # backends flush their counters at most once a second
        sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = %s"
        return int(self.one(sql, self.database.name)[0])

    def one(self, sql: str, *params: Any) -> tuple[Any, ...]:
        rows = self.query(sql, *params)
        if not rows:
            raise RuntimeError(f"no row for {sql!r}")
        return rows[0]

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of `sql`; reconnects (for up to 60 s) when the server restarted meanwhile."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return [tuple(row) for row in self.conn.execute(sql, params).fetchall()]
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                self.reconnects += 1
                say(f"PostgreSQL connection lost ({self.reconnects}): reconnecting")
                time.sleep(0.5)
                with contextlib.suppress(psycopg.OperationalError):
                    self.conn = psycopg.connect(self.database.libpq_url, autocommit=True)

    def timing(
        self, run_id: int, started: float, done_at: float, cpu: dict[str, float]
    ) -> RunTiming:
        created = self.run_created(run_id)
        first, last, answers, answered, latency = self.one(
            "SELECT extract(epoch FROM min(created_at)), extract(epoch FROM max(created_at)),"
            " count(*), count(text), avg(latency_ms) FILTER (WHERE NOT cached)"
            " FROM answers WHERE run_id = %s",
            run_id,
        )
        calls, limited, items_done = self.one(
            "SELECT sum(api_calls), sum(rate_limited), extract(epoch FROM max(finished_at))"
            " FROM items WHERE run_id = %s",
            run_id,
        )
        return RunTiming(
            run_id=run_id,
            command_to_done_s=round(done_at - started, 3),
            created_to_done_s=round(done_at - created, 3),
            cli_start_s=round(created - started, 3),
            first_answer_s=round(float(first) - created, 3),
            last_answer_s=round(float(last) - created, 3),
            aggregation_s=round(done_at - float(items_done), 3),
            answers=int(answers),
            answered=int(answered),
            api_calls=int(calls or 0),
            rate_limited=int(limited or 0),
            mean_client_latency_ms=round(float(latency), 1) if latency is not None else None,
            cpu=cpu,
        )

    def answer_times(self, run_id: int) -> dict[str, list[float]]:
        """Epoch seconds of every stored answer, per model label."""
        rows = self.query(
            "SELECT model_label, extract(epoch FROM created_at) FROM answers"
            " WHERE run_id = %s AND text IS NOT NULL",
            run_id,
        )
        times: dict[str, list[float]] = {}
        for label, at in rows:
            times.setdefault(label, []).append(float(at))
        return times

    def run_created(self, run_id: int) -> float:
        return float(
            self.one("SELECT extract(epoch FROM created_at) FROM runs WHERE id = %s", run_id)[0]
        )
