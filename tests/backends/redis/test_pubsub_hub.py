"""The shared pub/sub connection: a SUBSCRIBE that fails wedges nobody, every wait
keeps its bound, and channels nobody listens to any more are unsubscribed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable

import pytest
import redis

import tests.redis_server as redis_server_module
from corral.backends.base import Completion, JobState, Retention
from corral.backends.redis import RedisBackend
from corral.errors import CorralError
from tests.contract.conftest import claim_one, enqueue
from tests.redis_server import RedisServer

Q = "hub"
LIMIT = 3.0  # for timeout=1: the promise plus slack for a busy machine


async def bounded_wait(backend: RedisBackend, job_id: str, timeout: float = 1.0) -> None:
    """wait_finished(timeout) ends (None, or a CorralError naming the trouble) in time."""
    started = time.monotonic()
    try:
        outcome = await asyncio.wait_for(backend.wait_finished(Q, job_id, timeout), 30)
    except CorralError:
        outcome = None
    except TimeoutError as exc:
        raise AssertionError("wait_finished(timeout=1) still waiting after 30 s") from exc
    elapsed = time.monotonic() - started
    assert outcome is None
    assert elapsed < LIMIT, f"wait_finished(timeout={timeout}) took {elapsed:.1f} s"


async def woken_by_completion(waiter: RedisBackend, worker: RedisBackend, job_id: str) -> None:
    """A new wait works: it is woken by the job's completion."""
    waiting = asyncio.ensure_future(waiter.wait_finished(Q, job_id, 10))
    await asyncio.sleep(0)
    job = await claim_one(worker, Q)
    assert await worker.complete(Q, [Completion(job.id, job.token, b"1")], Retention()) == [True]
    try:
        assert await asyncio.wait_for(waiting, 15) is JobState.COMPLETED
    except TimeoutError as exc:
        raise AssertionError("a wait after the trouble never ended") from exc


async def test_a_refused_subscribe_wedges_no_later_wait(
    backend: RedisBackend, redis_url: str
) -> None:
    admin = redis.Redis.from_url(redis_url)
    # A user that may run everything (PUBLISH from the scripts too) but SUBSCRIBE.
    admin.execute_command("ACL", "SETUSER", "nosub", "on", ">pw", "~*", "&*", "+@all", "-subscribe")
    port = redis_url.split(":")[-1].split("/")[0]
    refused = RedisBackend(f"redis://nosub:pw@127.0.0.1:{port}/0")
    await refused.connect()
    try:
        await enqueue(backend, Q, "j1")
        await bounded_wait(refused, "j1")
        await bounded_wait(refused, "j1")  # the refusal left nothing half-done behind
        admin.execute_command("ACL", "SETUSER", "nosub", "+subscribe")
        await woken_by_completion(refused, backend, "j1")
    finally:
        await refused.close()
        admin.execute_command("ACL", "DELUSER", "nosub")
        admin.close()


@pytest.fixture
def private_server() -> AsyncIterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server  # type: ignore[misc]
    finally:
        server.stop()


async def test_a_subscribe_during_an_outage_wedges_no_wait_after_it(
    private_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, port = private_server.url, private_server.port
    backend = RedisBackend(url)
    await backend.connect()
    try:
        private_server.stop()
        await bounded_wait(backend, "j1")  # SUBSCRIBE cannot even be sent
        monkeypatch.setattr(redis_server_module, "_free_port", lambda: port)
        private_server.start()
        await enqueue(backend, Q, "j1")
        await woken_by_completion(backend, backend, "j1")
    finally:
        await backend.close()


async def test_a_killed_pubsub_connection_wedges_no_wait(
    backend: RedisBackend, redis_url: str
) -> None:
    await enqueue(backend, Q, "j1")
    await bounded_wait(backend, "j1")  # subscribed once
    admin = redis.Redis.from_url(redis_url)
    try:
        assert admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 0
        await bounded_wait(backend, "j1")
        await woken_by_completion(backend, backend, "j1")
    finally:
        admin.close()


def channels(redis_url: str) -> list[bytes]:
    admin = redis.Redis.from_url(redis_url)
    try:
        return sorted(admin.pubsub_channels())
    finally:
        admin.close()


async def until_no_channels(redis_url: str) -> None:
    deadline = time.monotonic() + 10
    while channels(redis_url):
        if time.monotonic() > deadline:
            raise AssertionError(f"still subscribed: {channels(redis_url)[:5]}")
        await asyncio.sleep(0.05)


async def test_closed_waits_streams_and_watches_leave_no_channel_subscribed(
    backend: RedisBackend, redis_url: str
) -> None:
    queues = [f"q{i}" for i in range(40)]
    for queue in queues:
        await enqueue(backend, queue, "j")
    waits: list[Awaitable[object]] = [backend.wait_finished(q, "j", 0.05) for q in queues]
    assert await asyncio.gather(*waits) == [None] * len(queues)
    streams = [await backend.events(q) for q in queues]
    for stream in streams:
        await stream.aclose()
    stop = await backend.watch_cancellations(queues, lambda q, i: None)
    assert len([c for c in channels(redis_url) if c.endswith(b":control")]) == len(queues)
    await stop()
    await until_no_channels(redis_url)

    # A channel dropped and wanted again is subscribed again.
    stream = await backend.events("q0")
    try:
        await enqueue(backend, "q0", "again")
        async with asyncio.timeout(5):
            assert await anext(stream) == ("added", "again")
    finally:
        await stream.aclose()
    await until_no_channels(redis_url)
