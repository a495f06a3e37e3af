"""Jobs claimed ahead of free slots (``Worker(prefetch=...)``, on by itself for short
jobs): held under lease, started the moment a slot frees, never run when cancelled
meanwhile, handed back without an attempt spent when the worker stops."""

from __future__ import annotations

import asyncio

from corral import Corral, Job, JobState
from corral.worker.prefetch import SHORT, Prefetch
from tests.worker.conftest import Workers, wait_until


async def test_held_jobs_wait_under_lease_and_start_as_slots_free(
    app: Corral, workers: Workers
) -> None:
    gate = asyncio.Event()
    ran: list[int] = []

    @app.task(name="pf.step")
    async def step(n: int) -> int:
        ran.append(n)
        await gate.wait()
        return n

    jobs = [await step.enqueue(n) for n in range(6)]
    # A 0.4 s lease renewed every 0.1 s: held jobs must be renewed like running ones.
    worker = workers.start(concurrency=1, prefetch=3, lease=0.4)
    queue = app.queue("default")
    await wait_until(lambda: len(ran) == 1)
    await wait_until(lambda: len(worker._prefetch.ready) == 3)
    counts = await queue.counts()
    assert (counts["active"], counts["waiting"]) == (4, 2)  # 1 running + 3 held
    await asyncio.sleep(1.2)  # three leases long: nothing held may be reaped
    assert ran == [0]
    assert all(j.state is JobState.ACTIVE for j in [await j.refresh() for j in jobs[:4]])
    gate.set()
    assert [await j.result(timeout=10) for j in jobs] == list(range(6))
    assert sorted(ran) == list(range(6))
    assert [(await j.refresh()).attempts for j in jobs] == [1] * 6


async def test_a_held_job_cancelled_never_runs(app: Corral, workers: Workers) -> None:
    gate = asyncio.Event()
    ran: list[int] = []

    @app.task(name="pf.wait")
    async def wait(n: int) -> int:
        ran.append(n)
        await gate.wait()
        return n

    first, held = await wait.enqueue(0), await wait.enqueue(1)
    worker = workers.start(concurrency=1, prefetch=1)
    await wait_until(lambda: len(worker._prefetch.ready) == 1)
    await held.cancel()
    await wait_until(lambda: _state(held, JobState.CANCELLED))
    assert not worker._prefetch.ready
    gate.set()
    assert await first.result(timeout=10) == 0
    assert ran == [0]


async def _state(job: Job, state: JobState) -> bool:
    await job.refresh()
    return job.state is state


async def test_held_jobs_go_back_to_waiting_without_an_attempt_when_the_worker_stops(
    app: Corral, workers: Workers
) -> None:
    gate = asyncio.Event()

    @app.task(name="pf.slow")
    async def slow(n: int) -> int:
        await gate.wait()
        return n

    jobs = [await slow.enqueue(n) for n in range(4)]
    worker = workers.start(concurrency=1, prefetch=2, grace=0.2)
    await wait_until(lambda: len(worker._prefetch.ready) == 2)
    await workers.stop(worker)
    for job in jobs[1:3]:
        await job.refresh()
        assert job.state is JobState.WAITING and job.attempts == 0, job.id
    gate.set()
    workers.start(concurrency=4, prefetch=0)
    assert sorted([await j.result(timeout=10) for j in jobs]) == [0, 1, 2, 3]


def test_prefetch_switches_itself_on_for_short_jobs_only() -> None:
    auto = Prefetch(concurrency=50)
    assert auto.room() == 0  # nothing seen yet: counted as long jobs
    for _ in range(100):
        auto.ran(SHORT / 10)
    assert auto.room() == 25
    for _ in range(100):
        auto.ran(SHORT * 4)
    assert auto.room() == 0
    assert Prefetch(concurrency=50, limit=0).room() == 0
    fixed = Prefetch(concurrency=50, limit=3)
    assert fixed.room() == 3
