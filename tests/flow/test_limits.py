"""Per-queue rate limits and concurrency caps, enforced across workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from corral import Corral, JobState, ValidationError
from corral.backends.base import QueueLimits
from corral.worker import Worker


class Probe:
    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.starts: list[float] = []


@pytest.fixture
async def setup(url: str) -> AsyncIterator[tuple[Corral, Probe]]:
    app = Corral(url)
    probe = Probe()

    @app.task(name="f.work", queue="flow", attempts=1)
    async def work(seconds: float) -> None:
        probe.starts.append(time.monotonic())
        probe.running += 1
        probe.peak = max(probe.peak, probe.running)
        try:
            await asyncio.sleep(seconds)
        finally:
            probe.running -= 1

    yield app, probe
    await app.close()


async def _run(app: Corral, workers: int, until_done: int, timeout: float = 20) -> None:
    ws = [Worker(app, ["flow"], concurrency=5, block=0.5) for _ in range(workers)]
    tasks = [asyncio.create_task(w.run()) for w in ws]
    try:
        async with asyncio.timeout(timeout):
            while (await app.queue("flow").counts())["completed"] < until_done:
                await asyncio.sleep(0.02)
    finally:
        for w in ws:
            w.stop()
        await asyncio.gather(*tasks)


async def test_max_active_caps_jobs_across_workers(setup: tuple[Corral, Probe]) -> None:
    app, probe = setup
    await app.queue("flow").set_limits(max_active=2)
    await app.enqueue_many([app.tasks["f.work"].call(0.1) for _ in range(10)])
    await _run(app, workers=2, until_done=10)
    assert probe.peak == 2  # 2 workers x 5 slots, yet never more than 2 at once
    assert (await app.queue("flow").counts())["failed"] == 0


async def test_rate_limit_spaces_starts_and_jobs_wait(setup: tuple[Corral, Probe]) -> None:
    app, probe = setup
    await app.queue("flow").set_limits(rate=(5, 0.5))
    await app.enqueue_many([app.tasks["f.work"].call(0) for _ in range(15)])
    started = time.monotonic()
    await _run(app, workers=2, until_done=15)
    # Judged on the backend's own start times (its clock, what the limiter counts):
    # when tasks' first lines run depends on the event loop and would make this flaky.
    jobs = await app.queue("flow").jobs("completed", limit=100)
    starts = sorted(j.started_at for j in jobs if j.started_at is not None)
    assert len(starts) == 15 and len(probe.starts) == 15
    for a, b in zip(starts, starts[5:], strict=False):  # any 0.5 s holds at most 5 starts
        assert (b - a).total_seconds() >= 0.5
    assert time.monotonic() - started >= 0.9  # 15 jobs at 5 per 0.5 s need >= 2 windows
    counts = await app.queue("flow").counts()
    assert counts["completed"] == 15 and counts["failed"] == 0


async def test_limits_round_trip_and_clear(setup: tuple[Corral, Probe]) -> None:
    app, _ = setup
    queue = app.queue("flow")
    assert await queue.limits() == QueueLimits()
    await queue.set_limits(max_active=3, rate=(100, 60))
    assert await queue.limits() == QueueLimits(max_active=3, rate_max=100, rate_window=60.0)
    await queue.clear_limits()
    assert await queue.limits() == QueueLimits()


async def test_cleared_cap_lets_waiting_jobs_run(setup: tuple[Corral, Probe]) -> None:
    app, probe = setup
    queue = app.queue("flow")
    await queue.set_limits(max_active=1)
    await app.enqueue_many([app.tasks["f.work"].call(0.3) for _ in range(4)])
    worker = Worker(app, ["flow"], concurrency=4, block=5.0)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.15)
        assert probe.running == 1
        await queue.clear_limits()  # wakes the blocked worker at once
        await asyncio.sleep(0.15)
        assert probe.running >= 3
    finally:
        worker.stop()
        await running


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_active": 0}, "max_active must be an integer >= 1"),
        ({"rate": (0, 60)}, "rate: jobs must be an integer >= 1"),
        ({"rate": (10, 0)}, "rate: window must be between"),
        ({"rate": 10}, r"rate must be \(jobs, seconds\)"),
    ],
)
async def test_bad_limits_are_refused(
    setup: tuple[Corral, Probe], kwargs: dict[str, object], message: str
) -> None:
    app, _ = setup
    with pytest.raises(ValidationError, match=message):
        await app.queue("flow").set_limits(**kwargs)  # type: ignore[arg-type]
    assert await app.queue("flow").limits() == QueueLimits()


async def test_waiting_jobs_under_a_limit_are_not_failed(setup: tuple[Corral, Probe]) -> None:
    app, _ = setup
    await app.queue("flow").set_limits(rate=(1, 60))
    jobs = await app.enqueue_many([app.tasks["f.work"].call(0) for _ in range(3)])
    worker = Worker(app, ["flow"], block=0.3)
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0.8)
    worker.stop()
    await running
    states = [(await j.refresh()).state for j in jobs]
    assert states.count(JobState.COMPLETED) == 1
    assert states.count(JobState.WAITING) == 2
