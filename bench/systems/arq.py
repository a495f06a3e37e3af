"""arq: ``python -m systems.arq`` runs ``arq.worker.run_worker`` with max_jobs=50.

arq needs redis-py < 6, so it lives in bench/.venv/redis5 and its producer runs
there too (``systems.producer``); nothing here imports arq at module level.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from systems.base import System
from systems.common import incr_async, noop, stamp_async


async def incr(ctx: dict[str, Any], i: int) -> None:
    await incr_async()


async def stamp(ctx: dict[str, Any], i: int) -> None:
    await stamp_async()


async def empty(ctx: dict[str, Any], i: int) -> None:
    noop()


def settings(url: str) -> Any:
    from arq.connections import RedisSettings
    from arq.worker import func

    class WorkerSettings:
        functions: ClassVar[list[Any]] = [incr, stamp, func(empty, name="noop")]
        redis_settings = RedisSettings.from_dsn(url)
        max_jobs = 50  # poll_delay stays at its default (0.5 s)

    return WorkerSettings


class Arq(System):
    id = "arq"
    label = "arq"
    package = "arq"
    venv = "redis5"
    bulk_api = "none: a loop of enqueue_job()"
    caps: ClassVar[dict[str, int]] = {"samples": 20}  # 0.5 s polls: 20 probes take ~10 s
    uvloop = True
    settings: ClassVar[dict[str, Any]] = {
        "worker": "python -m systems.arq: arq.worker.run_worker(WorkerSettings), the `arq` "
        "CLI's runner without its per-job INFO logging; one per process",
        "event loop": "uvloop",
        "concurrency": "max_jobs 50",
        "poll_delay": "0.5 s (default)",
        "task": "async def",
        "acks": "job deleted after it runs (at-least-once via its in-progress key)",
        "retention": "results kept 1 h (keep_result default)",
    }

    async def open(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self.pool = await create_pool(RedisSettings.from_dsn(self.ctx.redis_url))

    async def close(self) -> None:
        await self.pool.aclose()

    async def one(self, i: int, kind: str) -> None:
        await self.pool.enqueue_job(kind, i)

    async def bulk(self, n: int, kind: str = "incr") -> None:
        for i in range(n):
            await self.pool.enqueue_job(kind, i)

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [[self.python(), "-m", "systems.arq"]] * processes


if __name__ == "__main__":
    from arq.worker import run_worker

    run_worker(settings(os.environ["BENCH_REDIS_URL"]))
