"""Redis at maxmemory: enqueue refuses with StoreFull, workers keep draining."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis

from corral import Corral, JobState, StoreFull
from corral.backends.base import Completion, Retention
from corral.backends.redis import RedisBackend


@pytest.fixture
def full_redis(redis_url: str) -> Iterator[str]:
    client = redis.Redis.from_url(redis_url)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used + 1_000_000)
    client.config_set("maxmemory-policy", "noeviction")
    try:
        yield redis_url
    finally:
        client.config_set("maxmemory", 0)
        client.close()


async def test_enqueue_raises_store_full_and_workers_still_drain(full_redis: str) -> None:
    app = Corral(full_redis)
    backend = await app.backend()
    accepted = 0
    with pytest.raises(StoreFull, match="full"):
        for _ in range(1000):
            await app.enqueue("t.big", ["x" * 5_000], queue="mem")
            accepted += 1
    assert accepted >= 5
    counts = await app.queue("mem").counts()
    assert counts["waiting"] == accepted  # nothing half-written

    # Claiming, renewing and completing still work while Redis is full.
    jobs, _ = await backend.claim("mem", 5, 30_000, "w1")
    assert len(jobs) == 5
    lost, _ = await backend.renew("mem", [(j.id, j.token) for j in jobs], 30_000)
    assert lost == []
    done = await backend.complete(
        "mem", [Completion(j.id, j.token, b"1") for j in jobs], Retention(count=0)
    )
    assert done == [True] * 5
    assert (await app.queue("mem").counts())["waiting"] == accepted - 5
    await app.close()


async def test_eviction_policy_is_warned_about(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        backend = RedisBackend(redis_url)
        with caplog.at_level(logging.WARNING, logger="corral.redis"):
            await backend.connect()
        await backend.close()
    finally:
        client.config_set("maxmemory-policy", "noeviction")
        client.close()
    assert "maxmemory-policy=allkeys-lru" in caplog.text
    assert "DELETE job data" in caplog.text


async def test_durable_needs_the_aof(redis_url: str) -> None:
    from corral import ConfigurationError

    with pytest.raises(ConfigurationError, match="appendonly yes"):
        await RedisBackend(redis_url, durable=True).connect()


async def test_state_of_full_queue_is_consistent(full_redis: str) -> None:
    app = Corral(full_redis)
    job = await app.enqueue("t.x", [1], queue="mem2")
    assert (await job.refresh()).state is JobState.WAITING
    await app.close()
