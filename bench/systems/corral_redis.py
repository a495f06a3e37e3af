"""Corral on Redis: ``corral worker systems.corral_redis:app -c 50``.

The headline row's job body uses the same plain ``redis.asyncio.Redis`` client as every
Python peer (``systems.common``). Two extra rows, never the headline: Corral with
asyncio's own event loop (``--loop asyncio``), and Corral with the body sent through
the worker's own pipelined connection (``ctx.redis``, a Corral feature the peers lack;
``BENCH_BODY=ctx`` in the worker's environment).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from corral import Corral, JobContext
from systems.base import System
from systems.common import QUEUE, cpu, incr_async, noop, stamp_async


def make_app(url: str | None, *, own_client: bool = False) -> tuple[Corral, dict[str, Any]]:
    app = Corral(url)

    @app.task(name="bench.incr", queue=QUEUE)
    async def incr(ctx: JobContext, i: int) -> None:
        await incr_async(ctx.redis if own_client else None)

    @app.task(name="bench.stamp", queue=QUEUE)
    async def stamp(ctx: JobContext, i: int) -> None:
        await stamp_async(ctx.redis if own_client else None)

    @app.task(name="bench.noop", queue=QUEUE)
    async def empty(i: int) -> None:
        noop()

    @app.task(name="bench.cpu", queue=QUEUE)
    async def small_cpu(i: int) -> None:
        cpu()

    return app, {"incr": incr, "stamp": stamp, "noop": empty, "cpu": small_cpu}


# What the worker processes load (CORRAL_URL is set in their environment).
app, _ = make_app(os.environ.get("CORRAL_URL"), own_client=os.environ.get("BENCH_BODY") == "ctx")


class CorralRedis(System):
    id = "corral-redis"
    label = "Corral (Redis)"
    package = "corral"
    bulk_api = "task.enqueue_many() (one Lua call per 1,000 jobs)"
    concurrency = 50
    loop = "auto"
    body = "plain"
    settings: ClassVar[dict[str, Any]] = {
        "worker": "corral worker -c 50 --log-level warning (one command per process)",
        "event loop": "uvloop (--loop auto, the default)",
        "concurrency": "50 async jobs; while jobs average under 50 ms up to 25 more "
        "claimed ahead of free slots (prefetch, the default)",
        "process": "start-up heap frozen out of the garbage collector (the default)",
        "task": "async def",
        "job body": "INCR through a plain redis.asyncio.Redis (as every Python peer)",
        "acks": "after the job, batched with other completions (one script call)",
        "retention": "default: last 1,000 completed jobs kept",
    }

    def url(self) -> str:
        return self.ctx.redis_url

    async def open(self) -> None:
        self.app, self.tasks = make_app(self.url())
        await self.app.backend()

    async def close(self) -> None:
        await self.app.close()

    async def one(self, i: int, kind: str) -> None:
        await self.tasks[kind].enqueue(i)

    async def bulk(self, n: int, kind: str = "incr") -> None:
        await self.tasks[kind].enqueue_many([(i,) for i in range(n)])

    def worker_env(self) -> dict[str, str]:
        return {"CORRAL_URL": self.url(), "BENCH_BODY": self.body}

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [self.ctx.python, "-m", "corral", "worker", f"{__name__}:app"]
        cmd += ["-c", str(self.concurrency), "--log-level", "warning", "--loop", self.loop]
        return [cmd] * processes


class CorralRedisAsyncio(CorralRedis):
    """The headline settings on asyncio's own event loop instead of uvloop."""

    id = "corral-redis-asyncio"
    label = "Corral (Redis), asyncio loop"
    loop = "asyncio"
    only = "cdei"
    settings: ClassVar[dict[str, Any]] = {
        **CorralRedis.settings,
        "event loop": "asyncio's own (--loop asyncio)",
    }


class CorralRedisCtx(CorralRedis):
    """Extra row: the job body through ctx.redis, Corral's own pipelined connection."""

    id = "corral-redis-ctx"
    label = "Corral (Redis), body via ctx.redis"
    body = "ctx"
    only = "cde"
    settings: ClassVar[dict[str, Any]] = {
        **CorralRedis.settings,
        "job body": "INCR through ctx.redis, the worker's own pipelined connection "
        "(a Corral feature; not comparable with the peers)",
    }
