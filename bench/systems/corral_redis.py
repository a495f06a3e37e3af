"""Corral on Redis: ``corral worker systems.corral_redis:app -c 50``."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from corral import Corral, JobContext
from systems.base import System
from systems.common import QUEUE, incr_async, stamp_async


def make_app(url: str | None) -> tuple[Corral, Any, Any]:
    app = Corral(url)
    # The body goes through the worker's own Redis client (ctx.redis), as the issue
    # allows ("the library's own connection"); Node's BullMQ uses its own ioredis.
    # On SQLite there is no such client: the shared redis-py client, as the peers.
    own = (url or "").startswith(("redis://", "rediss://", "unix://"))

    @app.task(name="bench.incr", queue=QUEUE)
    async def incr(ctx: JobContext, i: int) -> None:
        await incr_async(ctx.redis if own else None)

    @app.task(name="bench.stamp", queue=QUEUE)
    async def stamp(ctx: JobContext, i: int) -> None:
        await stamp_async(ctx.redis if own else None)

    @app.task(name="bench.noop", queue=QUEUE)
    async def noop(i: int) -> None:
        """No job body at all: what Corral itself costs per job (profile_worker.sh)."""

    return app, incr, stamp


# What the worker processes load (CORRAL_URL is set in their environment).
app, _, _ = make_app(os.environ.get("CORRAL_URL"))


class CorralRedis(System):
    id = "corral-redis"
    label = "Corral (Redis)"
    package = "corral"
    bulk_api = "task.enqueue_many() (one Lua call per 1,000 jobs)"
    concurrency = 50
    settings: ClassVar[dict[str, Any]] = {
        "worker": "corral worker -c 50 --log-level warning (one command per process)",
        "concurrency": 50,
        "task": "async def",
        "job body": "INCR through ctx.redis, the worker's own client",
        "retention": "default (last 1,000 completed)",
    }

    def url(self) -> str:
        return self.ctx.redis_url

    async def open(self) -> None:
        self.app, self.incr, self.stamp = make_app(self.url())
        await self.app.backend()

    async def close(self) -> None:
        await self.app.close()

    async def one(self, i: int, kind: str) -> None:
        await (self.incr if kind == "incr" else self.stamp).enqueue(i)

    async def bulk(self, n: int) -> None:
        await self.incr.enqueue_many([(i,) for i in range(n)])

    def worker_env(self) -> dict[str, str]:
        return {"CORRAL_URL": self.url()}

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [self.ctx.python, "-m", "corral", "worker", f"{__name__}:app"]
        cmd += ["-c", str(self.concurrency), "--log-level", "warning"]
        return [cmd] * processes
