"""A connection that drops after Redis ran a command and before its reply arrived.

A loopback proxy (chaos/proxy.py) forwards the command, lets Redis run it, then drops
the reply and resets the connection: the client cannot know whether the command ran.
A claim must not be run twice (its first batch would wait out a lease nobody holds and
count a stall), and an enqueue sent again must still report the job it created.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from chaos.proxy import Proxy

from corral.backends.base import Completion, NewJob, Retention
from corral.backends.redis import RedisBackend
from corral.task import new_job_id
from tests.redis_server import RedisServer

KEEP = Retention(count=None, max_age=None)


@pytest.fixture
def proxy(redis_server: RedisServer, redis_url: str) -> Iterator[Proxy]:
    proxy = Proxy(redis_server.port).start()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
async def backend(proxy: Proxy) -> AsyncIterator[RedisBackend]:
    b = RedisBackend(f"redis://127.0.0.1:{proxy.port}/0")
    await b.connect()
    try:
        yield b
    finally:
        await b.close()


def job(job_id: str | None = None) -> NewJob:
    return NewJob(id=job_id or new_job_id(), name="t", data=b"[[],{}]", given_id=job_id is not None)


async def assert_claimed_once(backend: RedisBackend, claimed: list[str], expected: list[str]):
    assert claimed == expected  # the batch the lost reply carried, in line order
    counts = await backend.counts("q")
    assert counts["active"] == 3 and counts["waiting"] == 0


async def test_a_claim_whose_reply_is_lost_hands_over_its_jobs_without_a_stall(
    backend: RedisBackend, proxy: Proxy
) -> None:
    ids = [new_job_id() for _ in range(3)]
    await backend.enqueue("q", [job(i) for i in ids])
    proxy.cut_next_reply()
    jobs, _ = await backend.claim("q", 10, 60_000, "w1")
    await assert_claimed_once(backend, [j.id for j in jobs], ids)
    done = await backend.complete("q", [Completion(j.id, j.token, b"1") for j in jobs], KEEP)
    assert done == [True, True, True]  # the tokens handed over are the current leases
    for job_id in ids:
        record = await backend.get("q", job_id)
        assert record is not None and record.stalls == 0 and record.attempts == 1


async def test_a_woken_claim_whose_reply_is_lost_hands_over_its_jobs(
    backend: RedisBackend, proxy: Proxy
) -> None:
    ids = [new_job_id() for _ in range(3)]
    await backend.enqueue("q", [job(i) for i in ids])
    proxy.cut_next_reply()
    jobs, _ = await backend.wait_and_claim(["q"], 1.0, 10, 60_000, "w1", asyncio.Event())
    await assert_claimed_once(backend, [j.id for j in jobs], ids)
    done = await backend.complete("q", [Completion(j.id, j.token, b"1") for j in jobs], KEEP)
    assert done == [True, True, True]


@pytest.mark.parametrize("given", [False, True], ids=["random id", "caller's id"])
async def test_an_enqueue_sent_again_after_a_lost_reply_reports_its_job_created(
    backend: RedisBackend, proxy: Proxy, given: bool
) -> None:
    new = job("order-1" if given else None)
    proxy.cut_next_reply()
    assert await backend.enqueue("q", [new]) == [None]  # created, not "already there"
    assert proxy.connections >= 2  # the reply was lost: a new connection sent it again
    assert (await backend.counts("q"))["waiting"] == 1
    # A separate request for the same caller-chosen id still finds it taken.
    if given:
        assert await backend.enqueue("q", [job("order-1")]) == ["order-1"]
