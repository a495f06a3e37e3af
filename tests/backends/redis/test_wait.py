"""An idle worker's wait: the blocking pop and its claim on a connection of their own."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from corral.backends.redis import RedisBackend
from corral.backends.redis import wait as redis_wait
from tests.contract.conftest import enqueue

Q = "waits"
LEASE = 30_000


def wait(
    backend: RedisBackend, stop: asyncio.Event, timeout: float = 10.0, queue: str = Q
) -> asyncio.Task:
    return asyncio.ensure_future(backend.wait_and_claim([queue], timeout, 5, LEASE, "w1", stop))


async def test_an_enqueue_wakes_the_wait_with_the_job_already_claimed(
    backend: RedisBackend,
) -> None:
    waiting = wait(backend, asyncio.Event())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await enqueue(backend, Q, "j1")
    jobs, _ = await asyncio.wait_for(waiting, 5.0)
    assert [job.id for job in jobs] == ["j1"]
    record = await backend.get(Q, "j1")
    assert record is not None and record.state.value == "active"


async def test_concurrent_waits_do_not_queue_behind_each_other(backend: RedisBackend) -> None:
    # Workers sharing one backend: each blocking wait needs a connection of its own.
    stop = asyncio.Event()
    other = wait(backend, stop, queue="other")
    await asyncio.sleep(0.05)
    mine = wait(backend, asyncio.Event())
    await asyncio.sleep(0.05)
    await enqueue(backend, Q, "j1")
    jobs, _ = await asyncio.wait_for(mine, 2.0)
    assert [job.id for job in jobs] == ["j1"]
    assert not other.done()
    stop.set()
    assert await asyncio.wait_for(other, 2.0) == ([], None)


async def test_a_dropped_connection_ends_the_wait_quietly_and_the_next_one_reconnects(
    backend: RedisBackend, redis_url: str
) -> None:
    waiting = wait(backend, asyncio.Event())
    await asyncio.sleep(0.05)
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.client_kill_filter(_type="normal", skipme=True)
    finally:
        admin.close()
    # The claim behind the pop may have run: what it leased is looked up, not lost.
    assert await asyncio.wait_for(waiting, 5.0) == ([], None)
    await enqueue(backend, Q, "j2")
    jobs, _ = await asyncio.wait_for(wait(backend, asyncio.Event()), 5.0)
    assert [job.id for job in jobs] == ["j2"]


async def test_stop_ends_the_wait_at_once(backend: RedisBackend) -> None:
    stop = asyncio.Event()
    waiting = wait(backend, stop)
    await asyncio.sleep(0.05)
    started = time.monotonic()
    stop.set()
    assert await asyncio.wait_for(waiting, 5.0) == ([], None)
    assert time.monotonic() - started < 1.0


async def test_stop_gives_up_on_a_redis_that_does_not_answer(
    backend: RedisBackend, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_wait, "STOP_GIVE_UP", 0.2)
    stop = asyncio.Event()
    waiting = wait(backend, stop)
    await asyncio.sleep(0.05)
    admin = redis.Redis.from_url(redis_url)
    try:
        # Paused, Redis answers nobody (not even CLIENT UNPAUSE) until the pause ends.
        admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    finally:
        admin.close()
    started = time.monotonic()
    stop.set()
    assert await asyncio.wait_for(waiting, 3.0) == ([], None)
    assert time.monotonic() - started < 1.0  # well before the pause ends
    await enqueue(backend, Q, "j3")
    jobs, _ = await asyncio.wait_for(wait(backend, asyncio.Event()), 5.0)
    assert [job.id for job in jobs] == ["j3"]
