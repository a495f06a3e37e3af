"""The floor of scenario e on this machine: the same probe with no job queue at all.

The "enqueue" is one ``ZADD`` from the harness's redis-py client; the "worker" is a
uvloop process blocked in ``BZPOPMIN`` on that key, which ``RPUSH``es its time when
woken, as every system's job body does. No script, no job record, no claim: what the
three processes and two round trips cost here, which no system can go below. Measured
right before each system's probes (scenarios.latency; it is not one of the systems), so
a slow machine shows.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from systems.base import System
from systems.common import STARTS, redis_url

KEY = "bench:floor"


class Floor(System):
    id = "floor"
    label = "Floor (no queue: ZADD wakes BZPOPMIN)"
    package = "redis"
    settings: ClassVar[dict[str, Any]] = {}

    async def open(self) -> None:
        from redis.asyncio import Redis

        self.client = Redis.from_url(self.ctx.redis_url)

    async def close(self) -> None:
        await self.client.aclose()

    async def one(self, i: int, kind: str) -> None:
        await self.client.zadd(KEY, {str(i): 0})

    def worker_commands(self, processes: int) -> list[list[str]]:
        return [[self.ctx.python, "-m", "systems.floor"]] * processes


async def serve() -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url())
    while True:
        # Block for less than redis-py's 5 s socket timeout, so an idle wait is no error.
        if await client.bzpopmin([KEY], timeout=1) is not None:
            await client.rpush(STARTS, repr(time.time()))


if __name__ == "__main__":
    import uvloop

    uvloop.run(serve())
