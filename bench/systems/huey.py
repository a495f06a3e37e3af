"""Huey on Redis: ``huey_consumer systems.huey.huey -k thread -w 8``, one per process."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from huey import RedisHuey

from systems.base import System
from systems.common import QUEUE, incr_sync, noop, stamp_sync

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
huey = RedisHuey(QUEUE, url=URL)


@huey.task()
def incr(i: int) -> None:
    incr_sync()


@huey.task()
def stamp(i: int) -> None:
    stamp_sync()


@huey.task(name="noop")
def empty(i: int) -> None:
    noop()


TASKS = {"incr": incr, "stamp": stamp, "noop": empty}


class Huey(System):
    id = "huey"
    label = "Huey (Redis)"
    package = "huey"
    bulk_api = "none: a loop of task calls (Task.map is the same loop)"
    caps: ClassVar[dict[str, int]] = {"large": 200_000}  # no bulk API to pre-fill with
    settings: ClassVar[dict[str, Any]] = {
        "worker": "huey_consumer systems.huey.huey -k thread -w 8 -q (one command per process)",
        "storage": "RedisHuey (blocking dequeue, default)",
        "event loop": "none (sync)",
        "concurrency": "8 threads per process",
        "task": "def (sync)",
        "acks": "none: a job is removed from the queue when dequeued",
        "retention": "return value None: nothing stored",
    }

    async def one(self, i: int, kind: str) -> None:
        TASKS[kind](i)

    async def bulk(self, n: int, kind: str = "incr") -> None:
        task = TASKS[kind]
        for i in range(n):
            task(i)

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [self.tool("huey_consumer"), "systems.huey.huey", "-k", "thread", "-w", "8", "-q"]
        return [cmd] * processes
