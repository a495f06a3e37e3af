"""SAQ: ``saq systems.saq.settings`` with concurrency=50, one command per process.

SAQ supports redis-py < 8, so it lives in bench/.venv/redis7 and its producer runs
there too (``systems.producer``). ``settings`` is built on first access (PEP 562), so
importing this module never imports saq.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from systems.base import System
from systems.common import QUEUE, incr_async, noop, stamp_async


async def incr(ctx: dict[str, Any], *, i: int) -> None:
    await incr_async()


async def stamp(ctx: dict[str, Any], *, i: int) -> None:
    await stamp_async()


async def empty(ctx: dict[str, Any], *, i: int) -> None:
    noop()


empty.__qualname__ = empty.__name__ = "noop"  # SAQ finds a function by its name


def __getattr__(name: str) -> Any:
    if name == "settings":  # what the `saq` CLI loads
        from saq import Queue

        queue = Queue.from_url(os.environ["BENCH_REDIS_URL"], name=QUEUE)
        return {"queue": queue, "functions": [incr, stamp, empty], "concurrency": 50}
    raise AttributeError(name)


class Saq(System):
    id = "saq"
    label = "SAQ"
    package = "saq"
    venv = "redis7"
    bulk_api = "none: a loop of Queue.enqueue()"
    uvloop = True
    settings: ClassVar[dict[str, Any]] = {
        "worker": "saq systems.saq.settings (one command per process; logging at its default, ERROR)",
        "event loop": "uvloop",
        "concurrency": "50",
        "task": "async def",
        "acks": "after the job (job record updated to complete)",
        "retention": "default (completed job records kept with a TTL)",
    }

    async def open(self) -> None:
        from saq import Queue

        self.queue = Queue.from_url(self.ctx.redis_url, name=QUEUE)
        await self.queue.connect()

    async def close(self) -> None:
        await self.queue.disconnect()

    async def one(self, i: int, kind: str) -> None:
        await self.queue.enqueue(kind, i=i)

    async def bulk(self, n: int, kind: str = "incr") -> None:
        for i in range(n):
            await self.queue.enqueue(kind, i=i)

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [[self.tool("saq"), "systems.saq.settings"]] * processes
