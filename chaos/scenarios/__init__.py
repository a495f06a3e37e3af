"""The scenarios, and running one of them on one backend.

Each scenario is ``fn(env, quick) -> Result | list[Result]``; :func:`run` gives it a
fresh :class:`~chaos.scenarios.common.Env` (its own Redis or SQLite file, ledger and
logs) and turns a crash of the scenario itself into a failed result.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chaos.scenarios.blocking import blocked_worker
from chaos.scenarios.cluster import (
    cluster_primary_kill,
    cluster_primary_kill_durable,
    cluster_reshard,
)
from chaos.scenarios.common import Env
from chaos.scenarios.isolation import isolated_kills
from chaos.scenarios.network import connection_faults
from chaos.scenarios.notify import notify_kill
from chaos.scenarios.redis_faults import redis_full, redis_restart, redis_restart_producer
from chaos.scenarios.sentinel import (
    sentinel_primary_kill,
    sentinel_primary_kill_durable,
    sentinels_paused,
)
from chaos.scenarios.sqlite import sqlite_contention
from chaos.scenarios.workers import (
    crash_points,
    graceful_stops,
    kill_recovery,
    kill_workers,
    poison_job,
)
from chaos.verdict import Result

__all__ = ["SCENARIOS", "Scenario", "run"]

BOTH = ("redis", "sqlite")


@dataclass(frozen=True)
class Scenario:
    name: str
    fn: Callable[[Env, bool], Result | list[Result]]
    backends: tuple[str, ...] = BOTH
    redis_options: dict[str, str] = field(default_factory=dict)


SCENARIOS = [
    Scenario("kill_workers", kill_workers),
    Scenario("kill_recovery", kill_recovery),
    Scenario("crash_points", crash_points),
    Scenario("blocked_worker", blocked_worker),
    Scenario("poison_job", poison_job),
    Scenario("graceful_stops", graceful_stops),
    Scenario("isolated_kills", isolated_kills),
    Scenario("notify_kill", notify_kill),
    Scenario(
        "redis_restart",
        redis_restart,
        ("redis",),
        {"appendonly": "yes", "appendfsync": "everysec"},
    ),
    Scenario(
        "redis_restart_producer",
        redis_restart_producer,
        ("redis",),
        {"appendonly": "yes", "appendfsync": "everysec"},
    ),
    Scenario("connection_faults", connection_faults, ("redis",)),
    Scenario(
        "redis_full",
        redis_full,
        ("redis",),
        {"maxmemory": "3mb", "maxmemory_policy": "noeviction"},
    ),
    Scenario("sqlite_contention", sqlite_contention, ("sqlite",)),
    # The same SIGKILLed workers, on a 3-primary / 3-replica Redis Cluster.
    Scenario("cluster_worker_kill", kill_workers, ("cluster",)),
    Scenario("cluster_primary_kill", cluster_primary_kill, ("cluster",)),
    Scenario(
        "cluster_primary_kill_durable",
        cluster_primary_kill_durable,
        ("cluster",),
        {"appendonly": "yes", "appendfsync": "always"},
    ),
    Scenario("cluster_reshard", cluster_reshard, ("cluster",)),
    Scenario("sentinel_primary_kill", sentinel_primary_kill, ("sentinel",)),
    Scenario(
        "sentinel_primary_kill_durable",
        sentinel_primary_kill_durable,
        ("sentinel",),
        {"appendonly": "yes", "appendfsync": "always"},
    ),
    Scenario("sentinels_paused", sentinels_paused, ("sentinel",)),
]


def run(scenario: Scenario, backend: str, root: Path, quick: bool) -> list[Result]:
    """Run ``scenario`` on ``backend`` in a directory under ``root``, print one summary
    line per result and return the results; never raises."""
    started = time.time()
    try:
        with Env(scenario.name, backend, root, **scenario.redis_options) as env:
            outcome = scenario.fn(env, quick)
    except Exception as exc:
        failed = Result(scenario.name, backend, wall_s=time.time() - started)
        failed.check("scenario ran to the end", False, f"{type(exc).__name__}: {exc}")
        failed.note("".join(traceback.format_exception(exc))[-2000:])
        print(failed.summary(), flush=True)
        return [failed]
    results = outcome if isinstance(outcome, list) else [outcome]
    for result in results:
        print(result.summary(), flush=True)
    return results
