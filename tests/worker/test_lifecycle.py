"""Worker lifecycle: stopping, the worker registry, retention and leases."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from corral import ConfigurationError, Corral, InvalidName, JobState, Retention
from corral.backends.base import Completion
from corral.worker import Worker
from tests.worker.conftest import Workers, wait_until

# -- stopping --------------------------------------------------------------------------


async def test_graceful_stop_lets_a_running_job_finish(app: Corral, workers: Workers) -> None:
    started = asyncio.Event()

    @app.task(name="finish.me")
    async def finish() -> str:
        started.set()
        await asyncio.sleep(0.3)
        return "finished"

    worker = workers.start(grace=5.0)
    job = await finish.enqueue()
    await asyncio.wait_for(started.wait(), 5)
    t0 = time.monotonic()
    await workers.stop(worker)
    assert time.monotonic() - t0 < 2.0
    await job.refresh()
    assert job.state is JobState.COMPLETED
    assert job.return_value == "finished"
    assert worker.processed == 1


async def test_stop_after_grace_hands_the_job_back(app: Corral, workers: Workers) -> None:
    started = asyncio.Event()
    interrupted: list[bool] = []
    runs = 0

    @app.task(name="too.long")
    async def too_long() -> str:
        nonlocal runs
        runs += 1
        if runs > 1:
            return f"run {runs}"
        started.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            interrupted.append(True)
            raise
        return "never"

    worker = workers.start(grace=0.1)
    job = await too_long.enqueue()
    await asyncio.wait_for(started.wait(), 5)
    t0 = time.monotonic()
    await workers.stop(worker)
    assert time.monotonic() - t0 < 2.0
    assert interrupted == [True]  # the async task was cancelled
    await job.refresh()
    assert job.state is JobState.WAITING
    assert job.attempts == 0  # the unfinished attempt was given back
    assert job.errors == []
    counts = await app.queue("default").counts()
    assert (counts["waiting"], counts["active"]) == (1, 0)
    # another worker picks it up
    workers.start()
    assert await job.result(timeout=5) == "run 2"
    assert (await job.refresh()).attempts == 1


async def test_hard_stop_skips_the_grace(app: Corral, workers: Workers) -> None:
    started = asyncio.Event()

    @app.task(name="hard.stop")
    async def slow() -> None:
        started.set()
        await asyncio.sleep(5)

    worker = workers.start(grace=30.0)
    job = await slow.enqueue()
    await asyncio.wait_for(started.wait(), 5)
    t0 = time.monotonic()
    worker.stop(graceful=False)
    await workers.stop(worker)
    assert time.monotonic() - t0 < 2.0
    assert (await job.refresh()).state is JobState.WAITING


def _after(loop: asyncio.AbstractEventLoop, ticks: int, fn: Callable[[], None]) -> None:
    """Call ``fn`` after ``ticks`` turns of the event loop."""
    if ticks == 0:
        fn()
    else:
        loop.call_soon(_after, loop, ticks - 1, fn)


@pytest.mark.parametrize("ticks", [0, 1, 2, 3])
async def test_a_job_finishing_as_grace_runs_out_is_recorded_not_handed_back(
    app: Corral, workers: Workers, ticks: int
) -> None:
    # The job returns `ticks` turns of the loop after the grace ran out. Either it was
    # stopped first (handed back, its body never returned) or it returned and its
    # result is recorded; never both (returned, then handed back: it would run again).
    started, finish = asyncio.Event(), asyncio.Event()
    returned: list[bool] = []

    @app.task(name="just.in.time")
    async def just_in_time() -> str:
        started.set()
        await finish.wait()
        returned.append(True)
        return "done"

    worker = workers.start(grace=30.0)
    job = await just_in_time.enqueue()
    await asyncio.wait_for(started.wait(), 5)
    worker.stop()  # graceful: the worker waits for the job
    await asyncio.sleep(0.1)
    worker.stop()  # the grace is over now
    _after(asyncio.get_running_loop(), ticks, finish.set)
    await workers.join(worker)
    await job.refresh()
    if returned:
        assert job.state is JobState.COMPLETED, f"returned, then {job.state.value}"
        assert job.return_value == "done"
    else:
        assert job.state is JobState.WAITING
        assert job.attempts == 0


async def test_stop_right_as_the_worker_starts_waiting_is_prompt(
    app: Corral, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A signal handler may call stop() at any moment, including just as the fetch loop
    # sends its blocking wait for work (here: 0-5 loop turns after an empty claim).
    backend = await app.backend()
    original = backend.claim
    slow: list[tuple[int, float]] = []
    for ticks in range(6):
        worker = workers.start(block=1.0)

        async def claim_then_stop(*args: Any, worker: Worker = worker, ticks: int = ticks) -> Any:
            result = await original(*args)
            _after(asyncio.get_running_loop(), ticks, worker.stop)
            return result

        monkeypatch.setattr(backend, "claim", claim_then_stop)
        t0 = time.monotonic()
        await workers.join(worker)  # it stops itself, right after its first claim
        elapsed = time.monotonic() - t0
        if elapsed > 0.5:
            slow.append((ticks, round(elapsed, 2)))
    assert slow == []


async def test_idle_worker_stops_promptly(app: Corral, workers: Workers) -> None:
    worker = workers.start(block=5.0)
    await asyncio.sleep(0.1)
    t0 = time.monotonic()
    await workers.stop(worker)
    assert time.monotonic() - t0 < 1.0


async def test_jobs_claimed_by_the_stop_wake_up_are_handed_back(
    app: Corral, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The claim behind an idle worker's blocking wait also runs when the stop ends the
    # wait; a job that arrived just then is released unstarted, its attempt unspent.
    @app.task(name="t.never")
    async def never() -> None:
        raise AssertionError("a stopping worker started a job")

    backend = await app.backend()
    idle = asyncio.Event()

    async def woken_by_stop_only(
        queues: Any, timeout: float, count: int, lease: int, wid: str, stop: asyncio.Event
    ) -> Any:
        idle.set()
        await stop.wait()
        return await backend.claim(queues[0], count, lease, wid)

    monkeypatch.setattr(backend, "wait_and_claim", woken_by_stop_only)
    worker = workers.start()
    await asyncio.wait_for(idle.wait(), 5.0)
    job = await never.enqueue()
    t0 = time.monotonic()
    await workers.stop(worker)
    assert time.monotonic() - t0 < 1.0
    record = await backend.get("default", job.id)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.WAITING, 0)


# -- registry --------------------------------------------------------------------------


async def test_worker_registry(app: Corral, workers: Workers) -> None:
    assert await app.workers() == []
    worker = workers.start(["alpha", "beta"], concurrency=3)

    async def listed() -> bool:
        return any(info.id == worker.id for info in await app.workers())

    await wait_until(listed)
    [info] = await app.workers()
    assert info.id == worker.id
    assert info.queues == ["alpha", "beta"]
    assert info.concurrency == 3
    assert info.pid == os.getpid()
    assert info.host == socket.gethostname()
    assert info.active == 0
    assert abs(info.last_seen - time.time() * 1000) < 5000
    await workers.stop(worker)
    assert await app.workers() == []


async def test_worker_configuration_errors(app: Corral) -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        Worker(app, ["q"], concurrency=-1)
    with pytest.raises(ConfigurationError, match="concurrency"):
        Worker(app, ["q"], concurrency=0)
    with pytest.raises(ConfigurationError):
        Worker(app, ["q"], lease=0)
    with pytest.raises(ConfigurationError):
        Worker(app, ["q"], grace=-1)
    with pytest.raises(InvalidName):
        Worker(app, ["bad queue"])


async def test_worker_defaults_to_the_queues_of_the_app_tasks(app: Corral) -> None:
    @app.task(name="q.one", queue="one")
    async def one() -> None: ...

    @app.task(name="q.two", queue="two")
    async def two() -> None: ...

    @app.task(name="q.three", queue="one")
    async def three() -> None: ...

    assert Worker(app).queues == ["one", "two"]
    assert Worker(app, ["x", "y", "x"]).queues == ["x", "y"]


# -- retention -------------------------------------------------------------------------


async def test_completed_retention_keeps_the_newest(app: Corral, workers: Workers) -> None:
    @app.task(name="kept.three", completed=Retention(count=3))
    async def job_fn(n: int) -> int:
        return n

    jobs = [await job_fn.enqueue(n) for n in range(10)]
    worker = workers.start(concurrency=1)
    await wait_until(lambda: worker.processed == 10)
    counts = await app.queue("default").counts()
    assert (counts["completed"], counts["waiting"], counts["active"]) == (3, 0, 0)
    kept = await app.queue("default").jobs("completed", limit=10)
    assert [j.id for j in kept] == [j.id for j in reversed(jobs[-3:])]
    assert [j.return_value for j in kept] == [9, 8, 7]


async def test_failed_retention(app: Corral, workers: Workers) -> None:
    @app.task(name="fail.kept", attempts=1, failed=Retention(count=2))
    async def job_fn(n: int) -> None:
        raise ValueError(n)

    jobs = [await job_fn.enqueue(n) for n in range(5)]
    worker = workers.start(concurrency=1)
    await wait_until(lambda: worker.failed == 5)
    counts = await app.queue("default").counts()
    assert (counts["failed"], counts["waiting"]) == (2, 0)
    kept = await app.queue("default").jobs("failed")
    assert [j.id for j in kept] == [jobs[4].id, jobs[3].id]


# -- leases ----------------------------------------------------------------------------


async def test_lost_lease_fences_the_old_holder(app: Corral, workers: Workers) -> None:
    @app.task(name="lease.job", queue="q")
    async def job_fn(n: int) -> int:
        return n + 1

    job = await job_fn.enqueue(41)
    b = await app.backend()
    claimed, _ = await b.claim("q", 1, 100, "other")
    assert [c.id for c in claimed] == [job.id]
    old = claimed[0]
    assert (await job.refresh()).state is JobState.ACTIVE
    await asyncio.sleep(0.2)  # the 100 ms lease runs out
    requeued, failed = await b.reap_stalled("q", 1)
    assert (requeued, failed) == ([job.id], [])
    await job.refresh()
    assert (job.state, job.attempts, job.stalls) == (JobState.WAITING, 0, 1)
    # the old holder can no longer record anything
    assert await b.complete("q", [Completion(job.id, old.token, b'"stale"')], Retention()) == [
        False
    ]
    assert await b.fail("q", job.id, old.token, b"{}", None, Retention()) is False
    assert await b.update("q", job.id, old.token, progress=b"1") is False
    assert await b.release("q", [(job.id, old.token)]) == 0
    # a running worker completes it normally
    workers.start(["q"])
    assert await job.result(timeout=5) == 42
    await job.refresh()
    assert (job.state, job.return_value, job.attempts, job.stalls) == (
        JobState.COMPLETED,
        42,
        1,
        1,
    )
    # and the stale token still cannot overwrite the result
    assert await b.complete("q", [Completion(job.id, old.token, b'"stale"')], Retention()) == [
        False
    ]
    assert (await job.refresh()).return_value == 42


async def test_worker_recovers_a_stalled_job_itself(app: Corral, workers: Workers) -> None:
    @app.task(name="stalled.job", queue="sq")
    async def job_fn() -> str:
        return "recovered"

    job = await job_fn.enqueue()
    b = await app.backend()
    claimed, _ = await b.claim("sq", 1, 100, "dead-worker")
    assert len(claimed) == 1
    # the worker's maintenance loop reaps the expired lease, then runs the job
    workers.start(["sq"], heartbeat=0.1)
    assert await job.result(timeout=5) == "recovered"
    assert (await job.refresh()).stalls == 1


async def test_job_stalling_too_often_fails(app: Corral) -> None:
    @app.task(name="stall.fail", queue="sf")
    async def job_fn() -> None: ...

    job = await job_fn.enqueue()
    b = await app.backend()
    for _ in range(2):
        assert len((await b.claim("sf", 1, 50, "dead"))[0]) == 1
        await asyncio.sleep(0.1)
        await b.reap_stalled("sf", 1)
    await job.refresh()
    assert job.state is JobState.FAILED
    assert job.error is not None
    assert job.error["type"] == "Stalled"
    assert "max_stalls is 1" in job.error["message"]
