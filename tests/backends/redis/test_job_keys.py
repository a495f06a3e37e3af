"""A deleted job leaves no key behind: its error and log lists go with its hash."""

from __future__ import annotations

import redis.asyncio as aioredis

from corral import JobState
from corral.backends.base import Completion, Retention
from corral.backends.redis import RedisBackend
from tests.contract.conftest import claim_one, enqueue

Q = "keys"
KEEP = Retention()
ERR = b'{"type":"ValueError","message":"boom"}'


async def job_keys(url: str, job_id: str) -> list[bytes]:
    client = aioredis.Redis.from_url(url)
    try:
        return sorted([k async for k in client.scan_iter(match=f"*:j:{job_id}*")])
    finally:
        await client.aclose()


async def _retried_logged_and_completed(backend: RedisBackend, job_id: str) -> None:
    """A job with an error list (a failed attempt) and a log list, then completed."""
    await enqueue(backend, Q, job_id)
    job = await claim_one(backend, Q)
    assert await backend.update(Q, job_id, job.token, logs=["first try"]) is True
    assert await backend.fail(Q, job_id, job.token, ERR, 0, KEEP) is True
    job = await claim_one(backend, Q)
    assert await backend.complete(Q, [Completion(job_id, job.token, b"1")], KEEP) == [True]


async def test_retention_deletes_a_jobs_error_and_log_lists(
    backend: RedisBackend, redis_url: str
) -> None:
    await _retried_logged_and_completed(backend, "a")
    assert len(await job_keys(redis_url, "a")) == 3  # hash, errors, logs
    record = await backend.get(Q, "a")
    assert record is not None and record.logs == [b"first try"] and len(record.errors) == 1

    await enqueue(backend, Q, "b")
    job = await claim_one(backend, Q)
    await backend.complete(Q, [Completion("b", job.token, b"1")], Retention(count=0))
    assert await job_keys(redis_url, "a") == []
    assert await job_keys(redis_url, "b") == []


async def test_remove_and_clean_delete_every_key_of_a_job(
    backend: RedisBackend, redis_url: str
) -> None:
    await _retried_logged_and_completed(backend, "c")
    assert await backend.remove(Q, "c") is True
    assert await job_keys(redis_url, "c") == []

    await enqueue(backend, Q, "d")
    job = await claim_one(backend, Q)
    assert await backend.fail(Q, "d", job.token, ERR, None, KEEP) is True  # dead-lettered
    assert len(await job_keys(redis_url, "d")) == 2
    assert await backend.clean(Q, JobState.FAILED, 0, 100) == 1
    assert await job_keys(redis_url, "d") == []
