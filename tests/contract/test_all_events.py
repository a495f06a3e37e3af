"""Every queue's events through one stream (``Backend.all_events``), on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from corral.backends.base import Backend
from corral.backends.redis.streams import GAP
from tests.contract.conftest import claim_one, enqueue


async def _collect(
    stream: AsyncIterator[tuple[str, str, str]], n: int
) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    async with asyncio.timeout(5):
        async for item in stream:
            seen.append(item)
            if len(seen) == n:
                break
    return seen


async def test_all_events_names_the_queue_of_each_event(backend: Backend) -> None:
    stream = await backend.all_events()
    collector = asyncio.create_task(_collect(stream, 4))
    await enqueue(backend, "a", "a1")
    await enqueue(backend, "born-later", "b1", "b2")  # a queue unknown when subscribing
    await claim_one(backend, "a")
    seen = await collector
    # In order within a queue; across queues (on a cluster, published by different
    # nodes and relayed over the cluster bus) events have no common order.
    assert sorted(seen, key=lambda event: event[0]) == [
        ("a", "added", "a1"),
        ("a", "active", "a1"),
        ("born-later", "added", "b1"),
        ("born-later", "added", "b2"),
    ]
    await stream.aclose()


def _sharded(backend: Backend) -> bool:
    return str(getattr(backend, "url", "")).startswith(("redis+cluster", "rediss+cluster"))


async def test_a_queue_another_process_creates_is_followed(backend: Backend) -> None:
    """Redis Cluster publishes on shard channels, which have no patterns: a queue that
    another process creates after the stream opened is found in the registry (within
    QUEUE_POLL), announced as a gap, and followed from then on. Elsewhere (and for
    queues this process creates) nothing is missed."""
    other: Backend = type(backend)(backend.url)  # type: ignore[call-arg, attr-defined]
    await other.connect()
    try:
        stream = await backend.all_events()
        await enqueue(other, "new", "n1")
        # Sharded: the gap that says the stream found the queue (_collect allows 5 s, more
        # than QUEUE_POLL); n2 goes out only then, instead of after a guessed sleep.
        seen = await _collect(stream, 1)
        await enqueue(other, "new", "n2")
        seen += await _collect(stream, 1)
        if _sharded(backend):
            assert seen == [GAP, ("new", "added", "n2")]
        else:
            assert seen == [("new", "added", "n1"), ("new", "added", "n2")]
        await stream.aclose()
    finally:
        await other.close()


async def test_all_events_starts_at_the_subscription(backend: Backend) -> None:
    await enqueue(backend, "q", "before")
    stream = await backend.all_events()
    collector = asyncio.create_task(_collect(stream, 1))
    await enqueue(backend, "q", "after")
    assert await collector == [("q", "added", "after")]
    await stream.aclose()
