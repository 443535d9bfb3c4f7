"""The faults of the cluster test, done to real containers while a run goes on, each when
the answers reach its share of the expected count: a worker SIGKILLed, another cut from the
network for longer than the lease and reconnected, Redis restarted (its append-only file
keeps the queued messages), the workers scaled up, one replica stopped warm (SIGTERM)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cluster_checks import every_node_name
from cluster_docker import Compose, sh
from progress import say

PARTITION_BEYOND_LEASE_S = 15.0  # the partition lasts the lease plus this
WARM_STOP_GRACE_S = 120  # as the compose file's stop_grace_period for workers


@dataclass
class Faults:
    """Done to one compose project; `done` says what was done, in order, with details."""

    compose: Compose
    lease_s: float
    scale_to: int
    done: list[dict[str, Any]] = field(default_factory=list)
    spared: set[str] = field(default_factory=set)  # hit already: not picked again
    nodes_before_scale_up: set[str] = field(default_factory=set)

    def victim(self) -> str:
        """A running worker replica no fault has hit yet (the oldest)."""
        running = self.compose.containers("worker")
        fresh = [cid for cid in running if cid not in self.spared] or running
        if not fresh:
            raise RuntimeError("no running worker container to fault")
        self.spared.add(fresh[0])
        return fresh[0]

    def note(self, kind: str, **details: Any) -> None:
        say(f"fault {kind}: {details}")
        self.done.append({"kind": kind, **details})

    def kill(self) -> None:
        """SIGKILL: the worker's unacked messages wait in Redis, its leases run out."""
        container = self.victim()
        sh("docker", "kill", container, timeout=60)
        self.note("kill", container=container[:12])

    def partition(self) -> None:
        """Off the network for longer than the lease: its items go to the others (the
        sweep re-sends them once the lease is over), then it comes back."""
        container = self.victim()
        away_s = self.lease_s + PARTITION_BEYOND_LEASE_S
        sh("docker", "network", "disconnect", self.compose.network, container, timeout=60)
        time.sleep(away_s)
        sh("docker", "network", "connect", self.compose.network, container, timeout=60)
        self.note("partition", container=container[:12], seconds=away_s)

    def queued(self) -> int | None:
        """Messages waiting in the workers' queue (redis-cli reads REDISCLI_AUTH), None
        while Redis does not answer."""
        out = self.compose("exec", "-T", "redis", "redis-cli", "LLEN", "evalfleet",
                           timeout=60, check=False).strip()  # fmt: skip
        return int(out) if out.isdigit() else None

    def redis_restart(self) -> None:
        """Stop and start Redis: its append-only file brings the queued messages back (the
        workers take some at once, so the count after is at most the count before)."""
        before = self.queued()
        started = time.monotonic()
        self.compose("restart", "--timeout", "10", "redis", timeout=120)
        seconds = round(time.monotonic() - started, 1)
        after = None
        for _ in range(30):
            if (after := self.queued()) is not None:
                break
            time.sleep(0.5)
        self.note("redis_restart", seconds=seconds, queued_before=before, queued_after=after)

    def scale_up(self) -> None:
        before = len(self.compose.containers("worker"))
        self.nodes_before_scale_up = every_node_name(self.compose)
        self.compose("up", "-d", "--no-build", "--no-recreate", "--scale",
                     f"worker={self.scale_to}", "worker", timeout=300)  # fmt: skip
        after = len(self.compose.containers("worker"))
        self.note("scale_up", running_before=before, running_after=after)

    def warm_stop(self) -> None:
        """SIGTERM to one replica: Celery's warm shutdown finishes or hands back its tasks."""
        container = self.victim()
        started = time.monotonic()
        sh("docker", "stop", "--time", str(WARM_STOP_GRACE_S), container,
           timeout=WARM_STOP_GRACE_S + 60)  # fmt: skip
        self.note("warm_stop", container=container[:12],
                  seconds=round(time.monotonic() - started, 1))  # fmt: skip

    def plan(self) -> list[tuple[float, str, Callable[[], None]]]:
        """(share of the expected answers, kind, action), in the order they fire."""
        return [
            (0.10, "kill", self.kill),
            (0.20, "partition", self.partition),
            (0.40, "redis_restart", self.redis_restart),
            (0.50, "scale_up", self.scale_up),
            (0.65, "warm_stop", self.warm_stop),
        ]

    def by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for fault in self.done:
            counts[fault["kind"]] = counts.get(fault["kind"], 0) + 1
        return counts


def fire_during(
    faults: Faults,
    answers: Callable[[], int],
    finished: Callable[[], bool],
    expected: int,
    after: dict[str, Callable[[], None]],
) -> list[str]:
    """Fire the plan as the answers reach each share; `after[kind]` runs once that fault is
    done. Returns the kinds that could not fire because the run had ended first."""
    for share, kind, action in faults.plan():
        while (count := answers()) < share * expected and not finished():
            time.sleep(1)
        if count >= expected or finished():  # a fault after the last answer tests nothing
            return [k for _, k, _ in faults.plan() if k not in faults.by_kind()]
        say(f"{kind} at {count}/{expected} answers")
        action()
        if kind in after:
            after[kind]()
    return []
