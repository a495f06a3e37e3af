"""A job added waiting stores no 'state' field (memory per waiting job: add_job.lua):
it reads, cancels and removes as waiting; jobs stored by earlier versions with
'state' = 'waiting' read and act the same; a hash with neither a state nor a name
(a stray field written after the job was deleted) is no job."""

from __future__ import annotations

import redis.asyncio as aioredis

from corral import JobState
from corral.backends.redis import RedisBackend
from tests.contract.conftest import claim_one, enqueue

Q = "wstate"


async def fields(url: str, job_id: str, *names: str) -> list[bytes | None]:
    client = aioredis.Redis.from_url(url)
    try:
        return list(await client.hmget(f"corral:{{{Q}}}:j:{job_id}", list(names)))
    finally:
        await client.aclose()


async def hset(url: str, job_id: str, **values: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.hset(f"corral:{{{Q}}}:j:{job_id}", mapping=values)
    finally:
        await client.aclose()


async def test_a_waiting_job_stores_no_state_and_reads_as_waiting(
    backend: RedisBackend, redis_url: str
) -> None:
    await enqueue(backend, Q, "plain")
    await enqueue(backend, Q, "urgent", priority=5)
    await enqueue(backend, Q, "grouped", group="g1")
    for job_id in ("plain", "urgent", "grouped"):
        assert await fields(redis_url, job_id, "state", "name") == [None, b"t.x"]
        record = await backend.get(Q, job_id)
        assert record is not None and record.state is JobState.WAITING
        facts = await backend.wait_facts(Q, job_id)
        assert facts is not None and facts.state is JobState.WAITING
    assert await backend.cancel(Q, "plain") is JobState.CANCELLED
    assert await backend.remove(Q, "urgent") is True
    assert await backend.get(Q, "urgent") is None
    job = await claim_one(backend, Q)
    assert job.id == "grouped"
    assert await fields(redis_url, "grouped", "state") == [b"active"]


async def test_a_job_stored_with_state_waiting_by_an_earlier_version(
    backend: RedisBackend, redis_url: str
) -> None:
    await enqueue(backend, Q, "old1", "old2", "old3")
    for job_id in ("old1", "old2", "old3"):
        await hset(redis_url, job_id, state="waiting")  # how earlier versions stored it
    record = await backend.get(Q, "old1")
    assert record is not None and record.state is JobState.WAITING
    assert await backend.cancel(Q, "old1") is JobState.CANCELLED
    assert await backend.remove(Q, "old2") is True
    assert (await claim_one(backend, Q)).id == "old3"


async def test_a_hash_without_state_or_name_is_no_job(
    backend: RedisBackend, redis_url: str
) -> None:
    await hset(redis_url, "stray", cxl="1")
    assert await backend.get(Q, "stray") is None
    assert await backend.wait_facts(Q, "stray") is None
    assert await backend.remove(Q, "stray") is False
