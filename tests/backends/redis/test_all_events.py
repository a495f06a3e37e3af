"""The Redis side of ``all_events``: one pattern subscription, scoped to its prefix and
database (pub/sub is server-wide)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from corral.backends.redis import RedisBackend
from tests.contract.conftest import enqueue


async def numpat(url: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        return int(await client.pubsub_numpat())
    finally:
        await client.aclose()


async def test_one_pattern_subscription_while_open(backend: RedisBackend, redis_url: str) -> None:
    assert await numpat(redis_url) == 0
    stream = await backend.all_events()
    assert await numpat(redis_url) == 1
    await stream.aclose()
    async with asyncio.timeout(5):
        while await numpat(redis_url):
            await asyncio.sleep(0.01)


async def test_other_prefixes_and_databases_are_not_heard(redis_url: str) -> None:
    # A prefix with pattern characters must match itself only, not "c0rral-x".
    ours = RedisBackend(redis_url, prefix="c?rral")
    twin = RedisBackend(redis_url, prefix="c0rral")
    other_db = RedisBackend(redis_url.rsplit("/", 1)[0] + "/7", prefix="c?rral")
    for b in (ours, twin, other_db):
        await b.connect()
    try:
        stream = await ours.all_events()
        await enqueue(twin, "q", "twin")
        await enqueue(other_db, "q", "other-db")
        await enqueue(ours, "q", "sentinel")  # delivered in publish order, after any leak
        async with asyncio.timeout(5):
            first = await anext(stream)
        assert first == ("q", "added", "sentinel")
        await stream.aclose()
    finally:
        for b in (ours, twin, other_db):
            await b.close()
