"""CPU seconds and peak memory of process groups, read from /proc (Linux)."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    return stat_cpu_s(Path(f"/proc/{pid}/stat"))


def stat_cpu_s(stat: Path) -> float | None:
    """utime + stime of a /proc stat file (a process' or, under task/, one thread's); None
    once it is gone."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def processes_matching(pattern: str) -> list[int]:
    """Pids whose command line matches `pattern` (postgres backends show their database)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if re.search(pattern, command):
                    pids.append(int(entry.name))
    return pids


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK, sum(values[:8]) / CLK_TCK


def peak_rss_mb(pids: Sequence[int]) -> float:
    """The largest VmHWM (peak resident set) among `pids`, in MB."""
    peak = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
            peak = max(peak, int(match.group(1)) if match else 0)
    return round(peak / 1024, 1)


class CpuMeter:
    """CPU seconds used by named process groups between start() and stop()."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self._before: dict[str, dict[int, float]] = {}
        self._machine = (0.0, 0.0)
        self._wall = 0.0

    def _sample(self) -> dict[str, dict[int, float]]:
        sample = {}
        for name, pids in self.groups.items():
            seconds = {pid: cpu_seconds(pid) for pid in pids()}
            sample[name] = {pid: s for pid, s in seconds.items() if s is not None}
        return sample

    def start(self) -> None:
        self._before = self._sample()
        self._machine = machine_cpu()
        self._wall = time.monotonic()

    def stop(self) -> dict[str, float]:
        after, (busy, total) = self._sample(), machine_cpu()
        wall = time.monotonic() - self._wall
        used = {
            name: sum(s - self._before.get(name, {}).get(pid, 0.0) for pid, s in pids.items())
            for name, pids in after.items()
        }
        machine_busy = busy - self._machine[0]
        result = {f"{name}_cpu_s": round(seconds, 2) for name, seconds in used.items()}
        result["other_cpu_s"] = round(machine_busy - sum(used.values()), 2)
        result["machine_busy_fraction"] = round(
            machine_busy / max(1e-9, total - self._machine[1]), 3
        )
        result["wall_s"] = round(wall, 2)
        return result


def postgres_backend_pids(database: str) -> list[int]:
    """The backends of `database` ("postgres: 15/main: USER DB HOST(PORT) STATE")."""
    return processes_matching(rf"^postgres: (\S+: )?\S+ {re.escape(database)} ")


def other_postgres_pids(database: str) -> list[int]:
    """The server's shared processes (WAL writer, checkpointer) and other databases'."""
    ours = set(postgres_backend_pids(database))
    every = processes_matching(r"^(postgres: |/usr/lib/postgresql/)")
    return [pid for pid in every if pid not in ours]
