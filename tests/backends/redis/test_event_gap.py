"""A Redis restart under ``Corral.events()``: the pattern subscription comes back by
itself, and every consumer is told that events may have been missed meanwhile."""

from __future__ import annotations

import asyncio

from chaos.harness import RedisProc

from corral import Corral
from corral.feed import Event, Subscription
from tests.backends.redis.test_restart import restart


async def next_event(sub: Subscription) -> Event:
    async with asyncio.timeout(10):
        return await anext(sub)


async def test_consumers_learn_of_the_gap_and_hear_again(aof_redis: RedisProc) -> None:
    app = Corral(aof_redis.url)
    try:
        sub = await app.events()
        first = await app.enqueue("t.x", queue="q")
        assert await next_event(sub) == Event("q", "added", first.id)
        assert sub.dropped == 0
        await restart(aof_redis)
        async with asyncio.timeout(10):
            while sub.dropped == 0:
                await sub.wait()
                sub.drain()
        second = await app.enqueue("t.x", queue="q")
        assert await next_event(sub) == Event("q", "added", second.id)
        assert sub.dropped == 1  # one gap for one outage
        await sub.aclose()
    finally:
        await app.close()
