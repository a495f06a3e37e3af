"""What runs first: priorities, queue order, delays."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from corral import Corral, JobState
from tests.worker.conftest import Workers, wait_until


async def test_priorities_are_respected(app: Corral, workers: Workers) -> None:
    order: list[str] = []

    @app.task(name="prio.job", queue="prio")
    async def record(label: str) -> None:
        order.append(label)

    queue = app.queue("prio")
    await queue.pause()
    workers.start(["prio"], concurrency=1)
    plan = [("a", 0), ("b", 5), ("c", -3), ("d", 10), ("e", 5), ("f", 0), ("g", 1000)]
    jobs = [await record.options(priority=p).enqueue(label) for label, p in plan]
    await asyncio.sleep(0.1)
    assert order == []  # paused: nothing starts
    assert (await queue.counts())["paused"] == 1
    await queue.resume()
    for job in jobs:
        await job.result(timeout=5)
    # highest first; FIFO within one priority
    assert order == ["g", "d", "b", "e", "a", "f", "c"]


async def test_paused_queue_keeps_running_jobs_but_starts_no_more(
    app: Corral, workers: Workers
) -> None:
    release = asyncio.Event()
    started: list[int] = []

    @app.task(name="pause.job", queue="pq")
    async def job_fn(n: int) -> int:
        started.append(n)
        if n == 0:
            await release.wait()
        return n

    workers.start(["pq"], concurrency=1)
    first = await job_fn.enqueue(0)
    await wait_until(lambda: started == [0])
    await app.queue("pq").pause()
    second = await job_fn.enqueue(1)
    release.set()
    assert await first.result(timeout=5) == 0
    await asyncio.sleep(0.2)
    assert started == [0]
    assert (await second.refresh()).state is JobState.WAITING
    await app.queue("pq").resume()
    assert await second.result(timeout=5) == 1


async def test_queues_are_served_in_the_stated_order(app: Corral, workers: Workers) -> None:
    order: list[str] = []

    @app.task(name="ordered.job")
    async def record(label: str) -> None:
        order.append(label)

    jobs = []
    for n in range(3):
        jobs.append(await record.options(queue="low").enqueue(f"low{n}"))
    for n in range(3):
        jobs.append(await record.options(queue="high").enqueue(f"high{n}"))
    workers.start(["high", "low"], concurrency=1)
    for job in jobs:
        await job.result(timeout=5)
    assert order == ["high0", "high1", "high2", "low0", "low1", "low2"]


async def test_worker_ignores_queues_it_does_not_serve(app: Corral, workers: Workers) -> None:
    @app.task(name="served.job")
    async def job_fn() -> str:
        return "ran"

    other = await job_fn.options(queue="other").enqueue()
    mine = await job_fn.options(queue="mine").enqueue()
    workers.start(["mine"])
    assert await mine.result(timeout=5) == "ran"
    await asyncio.sleep(0.1)
    assert (await other.refresh()).state is JobState.WAITING


async def test_delayed_job_runs_after_its_delay_not_before(app: Corral, workers: Workers) -> None:
    # Judged by the store's own clock (created_at, started_at), not the test's: a
    # loaded machine may start the job late, never early. The worker blocks for up to
    # BLOCK seconds when idle; it must wake at the due time instead, so a start past
    # due + LATE means the engine ignored when the job was due.
    block, delay, late = 3.0, 0.5, 1.5

    @app.task(name="delayed.job")
    async def later() -> str:
        return "late"

    workers.start(block=block)
    await asyncio.sleep(0.05)  # the worker is idle, blocked waiting for work
    job = await later.options(delay=delay).enqueue()
    assert job.state is JobState.DELAYED
    assert await job.result(timeout=block + 5) == "late"
    done = await job.refresh()
    assert done.created_at is not None and done.started_at is not None
    due = done.created_at + timedelta(seconds=delay)
    assert due <= done.started_at < due + timedelta(seconds=late), (due, done.started_at)


async def test_delayed_jobs_run_in_due_order(app: Corral, workers: Workers) -> None:
    order: list[str] = []

    @app.task(name="due.order")
    async def record(label: str) -> None:
        order.append(label)

    jobs = [
        await record.options(delay=0.4).enqueue("third"),
        await record.options(delay=0.1).enqueue("first"),
        await record.options(delay=0.25).enqueue("second"),
    ]
    workers.start(concurrency=1)
    for job in jobs:
        await job.result(timeout=5)
    assert order == ["first", "second", "third"]


async def test_promoted_job_runs_now(app: Corral, workers: Workers) -> None:
    @app.task(name="promote.me")
    async def job_fn() -> int:
        return 1

    workers.start()
    job = await job_fn.options(delay=3600).enqueue()
    assert await job.promote() is True
    assert await job.result(timeout=5) == 1
