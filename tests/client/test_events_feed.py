"""``Corral.events()``: one backend subscription shared by any number of consumers,
each with a bounded buffer."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from corral import Corral, ValidationError
from corral.feed import Event, Subscription

Q = "feed"


async def take(sub: Subscription, n: int) -> list[Event]:
    seen: list[Event] = []
    async with asyncio.timeout(5):
        async for event in sub:
            seen.append(event)
            if len(seen) == n:
                break
    return seen


async def backend_subscriptions(app: Corral, url: str) -> int:
    """Redis: the server's own count of pattern subscriptions; SQLite and Redis Cluster
    (shard channels, one per queue: no pattern to count): the feed's."""
    if url.startswith("redis://"):
        client = aioredis.Redis.from_url(url)
        try:
            return int(await client.pubsub_numpat())
        finally:
            await client.aclose()
    return app.event_feed().subscriptions


async def test_many_consumers_share_one_backend_subscription(app: Corral, store_url: str) -> None:
    subs = [await app.events() for _ in range(25)]
    assert await backend_subscriptions(app, store_url) == 1
    assert app.event_feed().consumers == 25
    job = await app.enqueue("t.x", queue=Q)
    for sub in subs:
        assert await take(sub, 1) == [Event(Q, "added", job.id)]
    for sub in subs:
        await sub.aclose()
    assert app.event_feed().consumers == 0
    async with asyncio.timeout(5):  # the last consumer out closes it
        while await backend_subscriptions(app, store_url):
            await asyncio.sleep(0.01)


async def test_a_slow_consumer_drops_its_oldest_and_blocks_nobody(app: Corral) -> None:
    slow = await app.events(buffer=5)
    fast = await app.events()
    jobs = [await app.enqueue("t.x", queue=Q) for _ in range(40)]
    seen = await take(fast, 40)  # arrives while ``slow`` reads nothing
    assert [e.job_id for e in seen] == [j.id for j in jobs]
    assert (slow.pending, slow.dropped) == (5, 35)
    assert [e.job_id for e in slow.drain()] == [j.id for j in jobs[-5:]]
    await slow.aclose()
    await fast.aclose()


async def test_a_consumer_can_listen_to_some_queues(app: Corral) -> None:
    async with await app.events(queues=["mine"]) as sub:
        await app.enqueue("t.x", queue="other")
        job = await app.enqueue("t.x", queue="mine")
        assert await take(sub, 1) == [Event("mine", "added", job.id)]


async def test_closing_the_app_ends_every_consumer(app: Corral) -> None:
    sub = await app.events()
    feed = app.event_feed()
    await app.close()
    async with asyncio.timeout(5):
        assert [e async for e in sub] == []
    assert (feed.subscriptions, feed.consumers) == (0, 0)


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("buffer", [0, -1, 1.5, True])
async def test_a_bad_buffer_is_refused(app: Corral, buffer: object) -> None:
    with pytest.raises(ValidationError, match="buffer must be an integer >= 1"):
        await app.events(buffer=buffer)  # type: ignore[arg-type]


@pytest.mark.backends("sqlite")
async def test_a_bad_queue_name_is_refused(app: Corral) -> None:
    with pytest.raises(ValidationError, match="queue"):
        await app.events(queues=["no spaces"])
