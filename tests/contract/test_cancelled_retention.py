"""Retention of cancelled jobs: kept by count and age like completed ones, whether a
job is cancelled while it waits (``cancel``), its worker honours it (``abort``), or a
job asked to stop ends through ``fail``, ``release`` or a stall (``reap_stalled``)."""

from __future__ import annotations

import asyncio

from corral.backends.base import KEEP_ALL, Backend, ClaimedJob, JobState, Retention
from tests.contract.conftest import claim_one, enqueue

Q = "q"
REASON = b'{"type":"Cancelled","message":"asked to stop"}'


async def _cancelled(backend: Backend) -> list[str]:
    return [r.id for r in await backend.list_jobs(Q, JobState.CANCELLED, 0, 100)]


async def test_cancel_keeps_the_newest_cancelled_jobs_by_count(backend: Backend) -> None:
    ids = ["j1", "j2", "j3", "j4", "j5"]
    await enqueue(backend, Q, *ids[:3])
    await enqueue(backend, Q, *ids[3:], delay_ms=60_000)
    for job_id in ids:
        assert await backend.cancel(Q, job_id, Retention(count=2)) is JobState.CANCELLED
    assert await _cancelled(backend) == ["j5", "j4"]
    assert (await backend.counts(Q))["cancelled"] == 2
    assert [await backend.get(Q, i) for i in ids[:3]] == [None, None, None]


async def test_cancel_drops_cancelled_jobs_past_their_age(backend: Backend) -> None:
    await enqueue(backend, Q, "a", "b", "c")
    assert await backend.cancel(Q, "a") is JobState.CANCELLED  # no retention: kept
    assert await backend.cancel(Q, "b", Retention(max_age=3600)) is JobState.CANCELLED
    assert await _cancelled(backend) == ["b", "a"]
    # max_age=0: everything cancelled up to now is old enough to go.
    assert await backend.cancel(Q, "c", Retention(max_age=0)) is JobState.CANCELLED
    assert await _cancelled(backend) == []
    assert await backend.get(Q, "a") is None


async def test_abort_applies_retention_to_cancelled_jobs(backend: Backend) -> None:
    await enqueue(backend, Q, "waiting", "running")
    assert await backend.cancel(Q, "waiting") is JobState.CANCELLED
    job = await claim_one(backend, Q)
    assert await backend.cancel(Q, job.id) is JobState.ACTIVE
    assert await backend.abort(Q, job.id, job.token, REASON, Retention(count=1)) is True
    assert await _cancelled(backend) == ["running"]
    assert await backend.get(Q, "waiting") is None
    record = await backend.get(Q, "running")
    assert record is not None and record.errors == [REASON]


async def _cancel_running(backend: Backend, lease_ms: int = 30_000) -> ClaimedJob:
    """One cancelled job ("old") already kept, then "running" leased and asked to stop."""
    await enqueue(backend, Q, "old", "running")
    assert await backend.cancel(Q, "old") is JobState.CANCELLED
    job = await claim_one(backend, Q, lease_ms=lease_ms)
    assert await backend.cancel(Q, job.id) is JobState.ACTIVE
    return job


async def _only_running_kept(backend: Backend) -> None:
    assert await _cancelled(backend) == ["running"]
    assert await backend.get(Q, "old") is None


async def test_fail_of_a_job_asked_to_stop_applies_cancelled_retention(backend: Backend) -> None:
    job = await _cancel_running(backend)
    kept = Retention(count=1)
    assert await backend.fail(Q, job.id, job.token, REASON, None, KEEP_ALL, cancelled=kept)
    await _only_running_kept(backend)


async def test_release_of_a_job_asked_to_stop_applies_cancelled_retention(
    backend: Backend,
) -> None:
    job = await _cancel_running(backend)
    assert await backend.release(Q, [(job.id, job.token)], Retention(count=1)) == 1
    await _only_running_kept(backend)


async def test_reap_of_a_job_asked_to_stop_applies_cancelled_retention(backend: Backend) -> None:
    await _cancel_running(backend, lease_ms=100)
    await asyncio.sleep(0.25)  # the lease (100 ms) is over
    assert await backend.reap_stalled(Q, 1, cancelled=Retention(count=1)) == ([], [])
    await _only_running_kept(backend)
