"""Cancelling jobs: running async, running sync (cooperative), and waiting ones."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from corral import Corral, InvalidTransition, JobCancelled, JobContext, JobState, Retention
from tests.worker.conftest import Workers, wait_until


async def test_cancel_a_running_async_task(app: Corral, workers: Workers) -> None:
    started = asyncio.Event()
    interrupted: list[bool] = []

    @app.task(name="slow.async")
    async def slow() -> str:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            interrupted.append(True)
            raise
        return "finished"

    workers.start()
    job = await slow.enqueue()
    await asyncio.wait_for(started.wait(), 5)
    assert await job.cancel() is JobState.ACTIVE  # asked to stop; ends when it does
    with pytest.raises(JobCancelled):
        await job.result(timeout=5)
    assert interrupted == [True]
    await job.refresh()
    assert job.state is JobState.CANCELLED
    assert job.finished_at is not None
    assert job.error is not None
    assert job.error["type"] == "corral.errors.JobCancelled"
    counts = await app.queue("default").counts()
    assert (counts["active"], counts["cancelled"], counts["failed"]) == (0, 1, 0)


async def test_cancel_a_running_sync_task_that_checks(app: Corral, workers: Workers) -> None:
    started = threading.Event()
    loops: list[int] = []

    @app.task(name="slow.sync", attempts=3)
    def slow(ctx: JobContext) -> str:
        started.set()
        deadline = time.monotonic() + 5
        n = 0
        while time.monotonic() < deadline:
            ctx.raise_if_cancelled()
            n += 1
            time.sleep(0.01)
        loops.append(n)
        return "not cancelled"

    workers.start()
    job = await slow.enqueue()
    await wait_until(started.is_set)
    assert await job.cancel() is JobState.ACTIVE
    t0 = time.monotonic()
    with pytest.raises(JobCancelled):
        await job.result(timeout=5)
    assert time.monotonic() - t0 < 2
    assert loops == []  # it stopped inside the loop
    await job.refresh()
    assert job.state is JobState.CANCELLED
    assert job.attempts == 1  # cancelled, not retried


async def test_sync_task_sees_ctx_cancelled(app: Corral, workers: Workers) -> None:
    started = threading.Event()
    seen: list[bool] = []

    @app.task(name="polite.sync")
    def polite(ctx: JobContext) -> str:
        started.set()
        deadline = time.monotonic() + 5
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(ctx.cancelled)
        ctx.raise_if_cancelled()
        return "done"

    workers.start()
    job = await polite.enqueue()
    await wait_until(started.is_set)
    await job.cancel()
    with pytest.raises(JobCancelled):
        await job.result(timeout=5)
    assert seen == [True]


async def test_cancel_a_waiting_job_never_runs_it(app: Corral, workers: Workers) -> None:
    ran: list[int] = []

    @app.task(name="never.runs")
    async def never(n: int) -> int:
        ran.append(n)
        return n

    doomed = await never.enqueue(1)
    assert await doomed.cancel() is JobState.CANCELLED
    workers.start()
    survivor = await never.enqueue(2)
    assert await survivor.result(timeout=5) == 2
    with pytest.raises(JobCancelled):
        await doomed.result(timeout=1)
    assert ran == [2]
    await doomed.refresh()
    assert doomed.state is JobState.CANCELLED
    assert doomed.attempts == 0


async def test_cancel_a_delayed_job(app: Corral, workers: Workers) -> None:
    ran: list[int] = []

    @app.task(name="delayed.cancel")
    async def later(n: int) -> None:
        ran.append(n)

    workers.start()
    job = await later.options(delay=0.3).enqueue(1)
    assert await job.cancel() is JobState.CANCELLED
    # Due right after it: had the cancelled job still run, it would have started first.
    after = await later.options(delay=0.3).enqueue(2)
    await after.result(timeout=5)
    assert ran == [2]
    assert (await job.refresh()).state is JobState.CANCELLED


async def test_cancel_a_finished_job_is_refused(app: Corral, workers: Workers) -> None:
    @app.task(name="quick.done")
    async def quick() -> int:
        return 1

    workers.start()
    job = await quick.enqueue()
    assert await job.result(timeout=5) == 1
    with pytest.raises(InvalidTransition, match="completed"):
        await job.cancel()


async def test_cancelled_running_job_can_be_retried(app: Corral, workers: Workers) -> None:
    runs = 0
    started = asyncio.Event()

    @app.task(name="retry.after.cancel")
    async def once_slow() -> str:
        nonlocal runs
        runs += 1
        if runs == 1:
            started.set()
            await asyncio.sleep(10)
        return f"run {runs}"

    workers.start()
    job = await once_slow.enqueue()
    await asyncio.wait_for(started.wait(), 5)
    await job.cancel()
    with pytest.raises(JobCancelled):
        await job.result(timeout=5)
    assert await job.retry() is True
    assert await job.result(timeout=5) == "run 2"
    await job.refresh()
    assert job.attempts == 1  # fresh attempts after retry()


async def test_a_cancelled_running_job_is_trimmed_like_completed_ones(
    app: Corral, workers: Workers
) -> None:
    started = asyncio.Event()

    @app.task(name="slow.kept", completed=Retention(count=1))
    async def slow() -> None:
        started.set()
        await asyncio.sleep(10)

    queue = app.queue("default")
    earlier = await app.enqueue("not.here", delay=3600)
    assert await earlier.cancel() is JobState.CANCELLED  # kept by the app's retention
    workers.start()
    job = await slow.enqueue()  # type: ignore[attr-defined]
    await asyncio.wait_for(started.wait(), 5)
    assert await job.cancel() is JobState.ACTIVE
    assert await job.wait(timeout=5) is JobState.CANCELLED
    assert [j.id for j in await queue.jobs("cancelled")] == [job.id]  # the task's count=1


async def test_a_job_asked_to_stop_that_fails_is_trimmed_like_completed_ones(
    app: Corral, workers: Workers
) -> None:
    # It ends cancelled through fail(), not abort(): the task's retention still applies.
    started = threading.Event()

    @app.task(name="fails.kept", completed=Retention(count=1), attempts=1)
    def fails(ctx: JobContext) -> None:
        started.set()
        while not ctx.cancelled:
            time.sleep(0.01)
        raise RuntimeError("cleanup went wrong")

    queue = app.queue("default")
    earlier = await app.enqueue("not.here", delay=3600)
    assert await earlier.cancel() is JobState.CANCELLED  # kept by the app's retention
    workers.start()
    job = await fails.enqueue()  # type: ignore[attr-defined]
    assert await asyncio.to_thread(started.wait, 5)
    assert await job.cancel() is JobState.ACTIVE
    assert await job.wait(timeout=5) is JobState.CANCELLED
    assert [j.id for j in await queue.jobs("cancelled")] == [job.id]  # the task's count=1
