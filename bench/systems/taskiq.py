"""Taskiq with the Redis stream broker: ``taskiq worker --workers P --max-async-tasks 50``."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from taskiq_redis import RedisStreamBroker

from systems.base import System
from systems.common import QUEUE, incr_async, noop, stamp_async

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# consumer_id="0": a consumer group made by the worker reads the jobs queued before it
# existed (the default "$" skips them; the harness flushes Redis between runs).
broker = RedisStreamBroker(url=URL, queue_name=QUEUE, consumer_id="0")


@broker.task(task_name="incr")
async def incr(i: int) -> None:
    await incr_async()


@broker.task(task_name="stamp")
async def stamp(i: int) -> None:
    await stamp_async()


@broker.task(task_name="noop")
async def empty(i: int) -> None:
    noop()


TASKS = {"incr": incr, "stamp": stamp, "noop": empty}


class Taskiq(System):
    id = "taskiq"
    label = "Taskiq (Redis stream)"
    package = "taskiq"
    bulk_api = "none: a loop of .kiq()"
    caps: ClassVar[dict[str, int]] = {"large": 200_000}
    uvloop = True
    settings: ClassVar[dict[str, Any]] = {
        "worker": "taskiq worker systems.taskiq:broker --workers P --max-async-tasks 50 "
        "--log-level WARNING (one command: P child processes + a parent)",
        "event loop": "uvloop",
        "concurrency": "max_async_tasks 50",
        "broker": "taskiq_redis.RedisStreamBroker(consumer_id='0')",
        "task": "async def",
        "acks": "XACK when the message is handled (default)",
        "retention": "no result backend (nothing kept)",
    }

    extra_packages = ("taskiq-redis",)

    async def open(self) -> None:
        await broker.startup()

    async def close(self) -> None:
        await broker.shutdown()

    async def one(self, i: int, kind: str) -> None:
        await TASKS[kind].kiq(i)

    async def bulk(self, n: int, kind: str = "incr") -> None:
        task = TASKS[kind]
        for i in range(n):
            await task.kiq(i)

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [self.tool("taskiq"), "worker", "systems.taskiq:broker", "--workers", str(processes)]
        return [[*cmd, "--max-async-tasks", "50", "--log-level", "WARNING"]]
