"""Per-queue rate limits and concurrency caps, enforced across workers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from corral import Corral, JobState, ValidationError
from corral.backends.base import QueueLimits
from corral.worker import Worker


class Probe:
    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.starts: list[float] = []
        self.release = asyncio.Event()


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

    @app.task(name="f.hold", queue="flow", attempts=1)
    async def hold() -> None:
        """Runs until the test releases it."""
        probe.running += 1
        try:
            await probe.release.wait()
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


async def test_cleared_cap_lets_waiting_jobs_run(
    setup: tuple[Corral, Probe], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, probe = setup
    queue = app.queue("flow")
    await queue.set_limits(max_active=1)
    await app.enqueue_many([app.tasks["f.hold"].call() for _ in range(4)])
    # Note when the worker's blocking wait for work began (it is in one while this
    # holds a time): a wait still blocked after a while is the idle worker.
    backend = await app.backend()
    loop = asyncio.get_running_loop()
    wait_began: list[float] = []
    original = backend.wait_and_claim

    async def wait_and_claim(*args: Any) -> Any:
        wait_began.append(loop.time())
        try:
            return await original(*args)
        finally:
            wait_began.clear()

    monkeypatch.setattr(backend, "wait_and_claim", wait_and_claim)
    # The worker has room for all four but blocks for 30 s once capped: only the
    # wake-up from clearing the cap can start the others within the test's timeout.
    worker = Worker(app, ["flow"], concurrency=4, block=30.0)
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(10):
            while not (probe.running and wait_began and loop.time() - wait_began[0] > 0.2):
                await asyncio.sleep(0.01)
        assert (await queue.counts())["active"] == 1
        cleared_at = await backend.time_ms()
        await queue.clear_limits()  # wakes the blocked worker at once
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while probe.running < 4:
                    await asyncio.sleep(0.01)
        assert probe.running == 4, "clearing the cap did not wake the blocked worker"
    finally:
        probe.release.set()
        worker.stop()
        await running
    # The store's own start times: one job before the cap was cleared, three after.
    jobs = await queue.jobs(JobState.COMPLETED, limit=10)
    starts = sorted(j.started_at for j in jobs if j.started_at)
    assert len(starts) == 4
    cleared = datetime.fromtimestamp(cleared_at / 1000, UTC)
    assert starts[0] <= cleared <= starts[1]


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
