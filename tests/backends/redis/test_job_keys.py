"""A deleted job leaves no key behind: its error and log lists go with its hash; jobs
stored with the layout before ``je:``/``jl:`` are still read and deleted whole."""

from __future__ import annotations

import redis.asyncio as aioredis

from corral import JobState
from corral.backends.base import Completion, NewJob, Retention, WorkerInfo
from corral.backends.redis import RedisBackend
from tests.contract.conftest import claim_one, enqueue

Q = "keys"
KEEP = Retention()
ERR = b'{"type":"ValueError","message":"boom"}'


async def job_keys(url: str, job_id: str) -> list[bytes]:
    """The job's hash, error and log lists, those that exist."""
    client = aioredis.Redis.from_url(url)
    try:
        names = [f"corral:{{{Q}}}:{kind}:{job_id}" for kind in ("j", "je", "jl")]
        return [name.encode() for name in names if await client.exists(name)]
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


async def test_jobs_stored_with_the_old_layout_keep_their_errors_and_logs(
    backend: RedisBackend, redis_url: str
) -> None:
    # Before je:/jl:, a job's lists were <hash key>:err / :log, flagged xe / xl.
    await enqueue(backend, Q, "old", "b", "b:err")
    client = aioredis.Redis.from_url(redis_url)
    try:
        base = f"corral:{{{Q}}}:j:"
        await client.rpush(base + "old:err", b'{"type":"Old"}')
        await client.rpush(base + "old:log", b"old line")
        await client.hset(base + "old", mapping={"xe": 1, "xl": 1})
        await client.hset(base + "b", "xe", 1)  # its old list's name is job b:err's hash
        job = await claim_one(backend, Q)
        assert job.id == "old"
        assert await backend.update(Q, "old", job.token, logs=["new line"]) is True
        assert await backend.fail(Q, "old", job.token, ERR, None, KEEP) is True
        record = await backend.get(Q, "old")
        assert record is not None
        assert record.errors == [b'{"type":"Old"}', ERR]
        assert record.logs == [b"old line", b"new line"]
        b = await backend.get(Q, "b")
        assert b is not None and b.errors == []
        # Pages read records in page.lua, old lists included, as get does.
        assert (await backend.page_jobs(Q, JobState.FAILED, None, 10)).jobs == [record]
        line = (await backend.page_jobs(Q, JobState.WAITING, None, 10)).jobs
        assert {j.id: j for j in line}["b"] == b and len(line) == 2

        assert await backend.remove(Q, "old") is True
        assert await backend.remove(Q, "b") is True
        assert await client.exists(base + "old:err", base + "old:log", base + "old") == 0
        assert await job_keys(redis_url, "old") == []
        b_err = await backend.get(Q, "b:err")
        assert b_err is not None and b_err.state is JobState.WAITING
    finally:
        await client.aclose()


async def test_user_text_in_other_keys_never_meets_another_key(backend: RedisBackend) -> None:
    # Groups, dedupe keys and worker ids that look like other keys' names, in a queue
    # named "workers" (the worker registry's hash tag).
    q = "workers"
    now = await backend.time_ms()
    await backend.register_worker(WorkerInfo("w:1", "h", 1, [q], 1, now, now), 60_000)
    for job_id, group, key in [("live", "w:1", "j:a"), ("a", "live", "je:a"), ("b", "", "w:1")]:
        job = NewJob(job_id, "t.x", b"[[],{}]", group=group, dedupe_key=key)
        assert await backend.enqueue(q, [job]) == [None]
    jobs, _ = await backend.claim(q, 3, 30_000, "w:1")
    assert sorted(j.id for j in jobs) == ["a", "b", "live"]
    for job in jobs:
        assert await backend.fail(q, job.id, job.token, ERR, None, KEEP) is True
    assert [w.id for w in await backend.workers()] == ["w:1"]
    assert (await backend.counts(q))["failed"] == 3
