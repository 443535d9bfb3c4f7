"""The workers' own Prometheus metrics in the cluster test: every running replica's /metrics
scraped over the compose network, as a Prometheus there would, and added up.

Answer rows do not record the worker that wrote them, and a replica killed or stopped during
the faults takes its counters with it. So the exact check is the fault-free run, during
which every replica lives: the growth of the scraped answers over that run equals its
answer rows in SQL. After the faulty run the replicas still alive count at most its rows;
the rest went with the killed and stopped ones (docs/operations.md, "Metrics")."""

from __future__ import annotations

from typing import Any

from cluster_docker import Compose, inspect

from evalfleet.workers.metrics import scraped

METRICS_PORT = 9100  # the worker service's --metrics-port in docker-compose.yml
ANSWERS = "evalfleet_answers_stored_total"
SCRAPE = (
    "import sys, urllib.request; "
    "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
)


def address(compose: Compose, container: str) -> str:
    """The replica's address on the project network (a reconnected replica keeps no alias)."""
    return str(inspect(container)["NetworkSettings"]["Networks"][compose.network]["IPAddress"])


def scrape_answers(compose: Compose) -> dict[str, float]:
    """The answers each running replica says it stored, by container id, fetched from the
    simulator's container: another host on the network, not the worker itself."""
    counts = {}
    for container in compose.containers("worker"):
        url = f"http://{address(compose, container)}:{METRICS_PORT}/metrics"
        text = compose("exec", "-T", "simulator", "python", "-c", SCRAPE, url, timeout=60)
        counts[container] = scraped(text, ANSWERS)
    return counts


def compare(
    after_faults: dict[str, float],
    after_clean: dict[str, float],
    faulty_sql: int,
    clean_sql: int,
) -> dict[str, Any]:
    """`match`: the fault-free run's scraped answers (growth per replica) equal its rows."""
    grown = sum(count - after_faults.get(c, 0.0) for c, count in after_clean.items())
    alive = sum(after_faults.values())
    return {
        "answers_scraped": int(grown),
        "answers_sql": clean_sql,
        "match": grown == clean_sql,
        "replicas_scraped": len(after_clean),
        "after_faults": {
            "answers_scraped_alive": int(alive),
            "answers_sql": faulty_sql,
            "with_killed_or_stopped": faulty_sql - int(alive),
            "at_most_sql": alive <= faulty_sql,
        },
    }
