"""Several workers of one app share one SQLite backend object (``corral demo`` does)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral import Corral, JobCancelled, JobState
from tests.worker.conftest import Workers

LONG_LEASE = 120.0  # renewals (which also carry cancellations) never happen in a test


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Corral]:
    app = Corral(f"sqlite:///{tmp_path / 'shared.db'}")
    try:
        yield app
    finally:
        await app.close()


async def test_cancellations_reach_each_workers_job(app: Corral, workers: Workers) -> None:
    started: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}

    @app.task(name="shared.slow")
    async def slow(name: str) -> str:
        started[name].set()
        await asyncio.sleep(60)
        return "finished"

    first = workers.start(["a"], lease=LONG_LEASE)
    second = workers.start(["b"], lease=LONG_LEASE)
    job_a = await slow.options(queue="a").enqueue("a")
    job_b = await slow.options(queue="b").enqueue("b")
    await asyncio.wait_for(started["a"].wait(), 5)
    await asyncio.wait_for(started["b"].wait(), 5)
    assert await job_a.cancel() is JobState.ACTIVE
    with pytest.raises(JobCancelled):
        await job_a.result(timeout=5)
    # The first worker stopping must not stop the second one's watch.
    await workers.stop(first)
    assert await job_b.cancel() is JobState.ACTIVE
    with pytest.raises(JobCancelled):
        await job_b.result(timeout=5)
    await workers.stop(second)


async def test_each_worker_is_woken_by_work_enqueued_after_its_empty_claim(
    app: Corral,
) -> None:
    backend = await app.backend()
    never = asyncio.Event()
    assert await backend.claim("a", 1, 30_000, "w1") == ([], None)
    assert await backend.claim("b", 1, 30_000, "w2") == ([], None)
    await app.enqueue("t.x", [1], queue="a")
    # The worker of queue b is woken too, and its (empty) claim must not use up
    # the wake-up of the worker of queue a...
    assert await backend.wait_and_claim(["b"], 30.0, 1, 30_000, "w2", never) == ([], None)
    # ...which must not sleep through its whole wait (30 s) with a job waiting.
    jobs, _ = await asyncio.wait_for(
        backend.wait_and_claim(["a"], 30.0, 1, 30_000, "w1", never), 10
    )
    assert len(jobs) == 1
