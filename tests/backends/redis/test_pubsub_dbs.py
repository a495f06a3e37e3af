"""Pub/sub is server-wide in Redis: events and cancel signals of one database (and
one key prefix) must never reach another.

Each test ends with a *sentinel* published in the listener's own database: Redis
delivers one connection's messages in publish order, so once the sentinel has
arrived, anything leaked from the other database would have arrived before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from corral import Corral
from corral.backends.redis import RedisBackend
from corral.worker import Worker
from tests.contract.conftest import claim_one, enqueue
from tests.redis_server import RedisServer

Q = "shared"


def db_url(server: RedisServer, db: int) -> str:
    return server.url.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture
async def pair(
    redis_url: str, redis_server: RedisServer
) -> AsyncIterator[tuple[RedisBackend, RedisBackend]]:
    """Backends on databases 3 and 5 of one server (same prefix, same queue names)."""
    three, five = RedisBackend(db_url(redis_server, 3)), RedisBackend(db_url(redis_server, 5))
    await three.connect()
    await five.connect()
    try:
        yield three, five
    finally:
        await three.close()
        await five.close()


async def until(check: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_a_cancel_signal_reaches_only_its_own_database(
    pair: tuple[RedisBackend, RedisBackend],
) -> None:
    three, five = pair
    heard: dict[str, list[tuple[str, str]]] = {"3": [], "5": []}
    stops = [
        await three.watch_cancellations([Q], lambda q, i: heard["3"].append((q, i))),
        await five.watch_cancellations([Q], lambda q, i: heard["5"].append((q, i))),
    ]
    for backend in pair:
        await enqueue(backend, Q, "same")
        await claim_one(backend, Q)

    await five.cancel(Q, "same")
    await until(lambda: heard["5"])
    await enqueue(three, Q, "sentinel")
    await claim_one(three, Q)
    await three.cancel(Q, "sentinel")
    await until(lambda: heard["3"])

    assert heard == {"3": [(Q, "sentinel")], "5": [(Q, "same")]}
    for stop in stops:
        await stop()


async def test_a_prefix_keeps_its_cancel_signals_too(redis_url: str) -> None:
    one, two = RedisBackend(redis_url, prefix="one"), RedisBackend(redis_url, prefix="two")
    await one.connect()
    await two.connect()
    try:
        heard: list[str] = []
        stop = await one.watch_cancellations([Q], lambda q, i: heard.append(i))
        for backend in (one, two):
            await enqueue(backend, Q, "same")
            await claim_one(backend, Q)
        await two.cancel(Q, "same")
        await enqueue(one, Q, "sentinel")
        await claim_one(one, Q)
        await one.cancel(Q, "sentinel")
        await until(lambda: heard)
        assert heard == ["sentinel"]
        await stop()
    finally:
        await one.close()
        await two.close()


async def test_an_event_stream_shows_only_its_own_database(
    pair: tuple[RedisBackend, RedisBackend],
) -> None:
    three, five = pair
    stream = await three.events(Q)
    try:
        await enqueue(five, Q, "same")
        await claim_one(five, Q)
        await enqueue(three, Q, "sentinel")
        async with asyncio.timeout(5):
            first = await anext(stream)
        assert first == ("added", "sentinel")
    finally:
        await stream.aclose()


async def test_a_cancel_in_one_app_leaves_the_same_job_of_another_database_running(
    redis_url: str, redis_server: RedisServer
) -> None:
    apps = {db: Corral(db_url(redis_server, db)) for db in (3, 5)}
    started: dict[int, asyncio.Event] = {3: asyncio.Event(), 5: asyncio.Event()}
    tasks = {}
    for db, app in apps.items():

        @app.task(name="t.block", queue=Q, attempts=1)
        async def block(db: int) -> str:
            started[db].set()
            await asyncio.sleep(30)
            return "woke"

        tasks[db] = block
    workers = {
        db: Worker(app, [Q], concurrency=4, grace=1.0, block=0.5) for db, app in apps.items()
    }
    running = [asyncio.create_task(w.run()) for w in workers.values()]
    try:
        jobs = {db: await tasks[db].options(job_id="same").enqueue(db) for db in apps}
        async with asyncio.timeout(10):
            await started[3].wait()
            await started[5].wait()
        await jobs[5].cancel()
        assert await jobs[5].wait(10) is not None
        assert jobs[5].state.value == "cancelled"
        # The sentinel: a second running job of database 3, cancelled after the first.
        started[3].clear()
        sentinel = await tasks[3].options(job_id="sentinel").enqueue(3)
        async with asyncio.timeout(10):
            await started[3].wait()
        await sentinel.cancel()
        assert await sentinel.wait(10) is not None
        await jobs[3].refresh()
        assert jobs[3].state.value == "active"
        assert not jobs[3].to_dict()["cancel_requested"]
    finally:
        for worker in workers.values():
            worker.stop()
        await asyncio.gather(*running, return_exceptions=True)
        for app in apps.values():
            await app.close()
