"""Taskiq with the Redis stream broker: ``taskiq worker --workers P --max-async-tasks 50``."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from taskiq_redis import RedisStreamBroker

from systems.base import System
from systems.common import QUEUE, incr_async, stamp_async

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


class Taskiq(System):
    id = "taskiq"
    label = "Taskiq (Redis stream)"
    package = "taskiq"
    bulk_api = "none: a loop of .kiq()"
    caps: ClassVar[dict[str, int]] = {"bulk": 10_000, "drain": 10_000, "large": 200_000}
    settings: ClassVar[dict[str, Any]] = {
        "worker": "taskiq worker systems.taskiq:broker --workers P --max-async-tasks 50 "
        "--log-level WARNING (one command: P child processes + a parent)",
        "max_async_tasks": 50,
        "broker": "taskiq_redis.RedisStreamBroker(consumer_id='0'), no result backend",
        "task": "async def",
    }

    extra_packages = ("taskiq-redis",)

    async def open(self) -> None:
        await broker.startup()

    async def close(self) -> None:
        await broker.shutdown()

    async def one(self, i: int, kind: str) -> None:
        await (incr if kind == "incr" else stamp).kiq(i)

    async def bulk(self, n: int) -> None:
        for i in range(n):
            await incr.kiq(i)

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [self.tool("taskiq"), "worker", "systems.taskiq:broker", "--workers", str(processes)]
        return [[*cmd, "--max-async-tasks", "50", "--log-level", "WARNING"]]
