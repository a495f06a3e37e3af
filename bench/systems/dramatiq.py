"""Dramatiq with the Redis broker: ``dramatiq systems.dramatiq --processes P --threads 8``."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from systems.base import System
from systems.common import QUEUE, incr_sync, noop, stamp_sync

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
broker = RedisBroker(url=URL)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, actor_name="incr")
def incr(i: int) -> None:
    incr_sync()


@dramatiq.actor(queue_name=QUEUE, actor_name="stamp")
def stamp(i: int) -> None:
    stamp_sync()


@dramatiq.actor(queue_name=QUEUE, actor_name="noop")
def empty(i: int) -> None:
    noop()


TASKS = {"incr": incr, "stamp": stamp, "noop": empty}


class Dramatiq(System):
    id = "dramatiq"
    label = "Dramatiq (Redis)"
    package = "dramatiq"
    bulk_api = "none: a loop of actor.send()"
    caps: ClassVar[dict[str, int]] = {"large": 100_000}  # no bulk API to pre-fill with
    settings: ClassVar[dict[str, Any]] = {
        "worker": "dramatiq systems.dramatiq --processes P --threads 8 "
        "(one command: P worker processes + a parent)",
        "event loop": "none (sync)",
        "concurrency": "8 threads per process (default)",
        "task": "def (sync)",
        "acks": "after the job (default)",
        "retention": "no result backend (nothing kept)",
    }

    async def one(self, i: int, kind: str) -> None:
        TASKS[kind].send(i)

    async def bulk(self, n: int, kind: str = "incr") -> None:
        actor = TASKS[kind]
        for i in range(n):
            actor.send(i)

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [self.tool("dramatiq"), "systems.dramatiq", "--processes", str(processes)]
        return [[*cmd, "--threads", "8"]]
