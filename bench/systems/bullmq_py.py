"""BullMQ's Python port: ``python -m systems.bullmq_py`` runs a Worker with concurrency 50.

The port needs redis-py < 6, so it lives in bench/.venv/redis5 and its producer runs
there too (``systems.producer``); bullmq is imported lazily.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any, ClassVar

from systems.base import System
from systems.common import QUEUE, incr_async, noop, stamp_async


async def process(job: Any, token: str) -> None:
    if job.name == "stamp":
        await stamp_async()
    elif job.name == "noop":
        noop()
    else:
        await incr_async()


async def serve() -> None:
    from bullmq import Worker

    url = os.environ["BENCH_REDIS_URL"]
    worker = Worker(QUEUE, process, {"connection": url, "concurrency": 50})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await worker.close()


class BullMQPy(System):
    id = "bullmq-py"
    label = "BullMQ (Python port)"
    package = "bullmq"
    venv = "redis5"
    bulk_api = "Queue.addBulk() (one MULTI per 1,000 jobs)"
    uvloop = True
    settings: ClassVar[dict[str, Any]] = {
        "worker": "python -m systems.bullmq_py: bullmq.Worker(concurrency=50), one per process",
        "event loop": "uvloop",
        "concurrency": "50",
        "task": "async def",
        "acks": "after the job (moveToFinished)",
        "retention": "default (every completed job kept)",
    }

    async def open(self) -> None:
        from bullmq import Queue

        self.queue = Queue(QUEUE, {"connection": self.ctx.redis_url})

    async def close(self) -> None:
        await self.queue.close()

    async def one(self, i: int, kind: str) -> None:
        await self.queue.add(kind, {"i": i})

    async def bulk(self, n: int, kind: str = "incr") -> None:
        for start in range(0, n, 1000):
            jobs = [{"name": kind, "data": {"i": i}} for i in range(start, min(n, start + 1000))]
            await self.queue.addBulk(jobs)

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [[self.python(), "-m", "systems.bullmq_py"]] * processes


if __name__ == "__main__":
    asyncio.run(serve())
