"""The stall reaper applies the failed set's retention to the jobs it dead-letters."""

from __future__ import annotations

import asyncio

from corral.backends.base import KEEP_ALL, Backend, JobState, Retention
from tests.contract.conftest import claim_one, enqueue

Q = "q"
ERR = b'{"type":"Boom","message":"x"}'


async def _failed(backend: Backend) -> list[str]:
    return [r.id for r in await backend.list_jobs(Q, JobState.FAILED, 0, 100)]


async def test_reap_applies_failed_retention(backend: Backend) -> None:
    await enqueue(backend, Q, "old", "stalled")
    old = await claim_one(backend, Q)
    assert await backend.fail(Q, old.id, old.token, ERR, None, KEEP_ALL)
    await claim_one(backend, Q, lease_ms=100)
    await asyncio.sleep(0.25)  # the lease (100 ms) is over
    assert await backend.reap_stalled(Q, 0, failed=Retention(count=1)) == ([], ["stalled"])
    assert await _failed(backend) == ["stalled"]
    assert await backend.get(Q, "old") is None


async def test_reap_keeps_every_failed_job_by_default(backend: Backend) -> None:
    await enqueue(backend, Q, "old", "stalled")
    old = await claim_one(backend, Q)
    assert await backend.fail(Q, old.id, old.token, ERR, None, KEEP_ALL)
    await claim_one(backend, Q, lease_ms=100)
    await asyncio.sleep(0.25)
    assert await backend.reap_stalled(Q, 0) == ([], ["stalled"])
    assert await _failed(backend) == ["stalled", "old"]
