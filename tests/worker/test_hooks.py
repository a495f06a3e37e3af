"""Lifecycle hooks with a real worker on each backend: listeners, user callbacks,
worker startup/shutdown hooks (see corral.hooks)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from corral import (
    Corral,
    JobContext,
    JobEvent,
    JobState,
    Lifecycle,
    WorkerStartupFailed,
    current_job,
)
from corral.worker import Worker
from tests.worker.conftest import Workers, wait_until


class Recorder(Lifecycle):
    """Records every event it hears as (event, job id)."""

    def __init__(self) -> None:
        self.seen: list[JobEvent] = []

    async def _record(self, event: JobEvent) -> None:
        self.seen.append(event)

    started = progress = retrying = completed = failed = cancelled = stalled = _record

    def of(self, job_id: str) -> list[str]:
        return [e.event for e in self.seen if e.job_id == job_id]


async def test_callbacks_fire_once_per_outcome(app: Corral, workers: Workers) -> None:
    calls: list[tuple[str, str, Any]] = []
    threads: set[bool] = set()

    @app.on_completed
    async def app_completed(event: JobEvent) -> None:
        calls.append(("app.completed", event.job_id, event.result))

    @app.on_failed
    def app_failed(event: JobEvent) -> None:  # plain: run in a thread
        threads.add(threading.current_thread() is threading.main_thread())
        calls.append(("app.failed", event.job_id, event.error_message))

    def task_failed(event: JobEvent) -> None:
        calls.append(("task.failed", event.job_id, (event.attempt, event.error_message)))

    async def task_retrying(event: JobEvent) -> None:
        calls.append(("task.retrying", event.job_id, event.retry_in))

    async def task_completed(event: JobEvent) -> None:
        calls.append(("task.completed", event.job_id, event.result))

    @app.task(name="hooks.ok", on_completed=task_completed)
    async def ok(n: int) -> dict[str, int]:
        return {"n": n}

    @app.task(
        name="hooks.bad",
        attempts=2,
        backoff=0,
        on_failed=task_failed,
        on_retrying=task_retrying,
    )
    def bad() -> None:
        raise ValueError("boom")

    worker = workers.start()
    good, broken = await ok.enqueue(7), await bad.enqueue()
    assert await broken.wait(timeout=5) is JobState.FAILED
    assert await good.result(timeout=5) == {"n": 7}
    await wait_until(lambda: len(calls) >= 5)
    await workers.stop(worker)  # delivers what is pending: the counts are final
    assert sorted(calls, key=repr) == sorted(
        [
            ("app.completed", good.id, {"n": 7}),
            ("task.completed", good.id, {"n": 7}),
            ("task.retrying", broken.id, 0.0),
            ("app.failed", broken.id, "ValueError: boom"),
            ("task.failed", broken.id, (2, "ValueError: boom")),
        ],
        key=repr,
    )
    assert threads == {False}


async def test_a_listener_hears_a_jobs_events_in_order(app: Corral, workers: Workers) -> None:
    recorder = app.add_listener(Recorder())
    assert isinstance(recorder, Recorder)

    @app.task(name="hooks.steps")
    async def steps(ctx: JobContext) -> str:
        await ctx.progress(50)
        await ctx.progress({"done": 2})
        return "ok"

    worker = workers.start()
    job = await steps.enqueue()
    assert await job.result(timeout=5) == "ok"
    await wait_until(lambda: "completed" in recorder.of(job.id))
    await workers.stop(worker)
    assert recorder.of(job.id) == ["started", "progress", "progress", "completed"]
    progress = [e.progress for e in recorder.seen if e.event == "progress"]
    assert progress == [50, {"done": 2}]
    done = recorder.seen[-1]
    assert (done.task, done.queue, done.attempt, done.worker) == (
        "hooks.steps",
        "default",
        1,
        worker.id,
    )
    assert done.result == "ok" and done.ctx is not None and done.ctx.id == job.id


class Boom(Lifecycle):
    async def started(self, event: JobEvent) -> None:
        raise RuntimeError("listener bug")

    completed = failed = started


class Hang(Lifecycle):
    timeout = 1.0

    def __init__(self) -> None:
        self.abandoned = 0

    async def started(self, event: JobEvent) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.abandoned += 1
            raise


async def test_raising_or_hanging_listeners_fail_no_job_and_block_nothing(
    app: Corral, workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corral.hooks")
    hang = app.add_listener(Hang())
    app.add_listener(Boom())
    recorder = app.add_listener(Recorder())
    assert isinstance(hang, Hang) and isinstance(recorder, Recorder)

    @app.task(name="hooks.quick")
    async def quick(n: int) -> int:
        return n

    # One slot: the second job is claimed only after the first one's slot is free,
    # while the hanging listener still holds the first one's "started".
    worker = workers.start(concurrency=1)
    jobs = [await quick.enqueue(1), await quick.enqueue(2)]
    assert [await job.result(timeout=5) for job in jobs] == [1, 2]
    await wait_until(lambda: all("completed" in recorder.of(job.id) for job in jobs))
    assert hang.abandoned == 0  # every job done while the listener still hangs
    for job in jobs:
        await job.refresh()
        assert job.state is JobState.COMPLETED and job.errors == []
    await wait_until(lambda: hang.abandoned == 2, timeout=3)
    await workers.stop(worker)
    text = caplog.text
    assert "listener Boom failed on started of job" in text
    assert "listener Boom failed on completed of job" in text
    assert "listener Hang took longer than 1s on started of job" in text


async def test_a_stalled_job_is_heard(app: Corral, workers: Workers) -> None:
    recorder = app.add_listener(Recorder())
    assert isinstance(recorder, Recorder)

    @app.task(name="hooks.orphan")
    async def orphan() -> str:
        return "again"

    job = await orphan.enqueue()
    backend = await app.backend()
    claimed, _ = await backend.claim("default", 1, 100, "ghost-worker")  # never renewed
    assert [c.id for c in claimed] == [job.id]
    worker = workers.start(lease=0.4)
    assert await job.result(timeout=5) == "again"
    await wait_until(lambda: "completed" in recorder.of(job.id))
    await workers.stop(worker)
    # The reaper's event and the next run's are told apart, in no fixed order.
    assert sorted(recorder.of(job.id)) == ["completed", "stalled", "started"]
    (stalled,) = [e for e in recorder.seen if e.event == "stalled"]
    assert (stalled.task, stalled.queue, stalled.ctx) == ("hooks.orphan", "default", None)


async def test_startup_state_reaches_tasks_and_shutdown_runs_once(
    app: Corral, workers: Workers
) -> None:
    order: list[str] = []

    @app.on_startup
    async def open_pool(state: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.05)  # a job already waiting must not start meanwhile
        order.append("startup")
        return {"pool": "pool-1"}

    @app.on_startup
    def count() -> None:  # plain, no argument
        order.append("startup-2")

    @app.on_shutdown
    def close_pool(state: dict[str, Any]) -> None:
        order.append(f"shutdown:{state['pool']}")

    @app.task(name="hooks.uses_pool")
    async def uses_pool(ctx: JobContext) -> list[str]:
        order.append("job")
        return [ctx.worker_state["pool"], current_job().worker_state["pool"]]

    first = await uses_pool.enqueue()
    worker = workers.start()
    assert await first.result(timeout=5) == ["pool-1", "pool-1"]
    second = await uses_pool.enqueue()
    assert await second.result(timeout=5) == ["pool-1", "pool-1"]
    assert worker.state == {"pool": "pool-1"}
    assert "shutdown:pool-1" not in order
    await workers.stop(worker)
    assert order == ["startup", "startup-2", "job", "job", "shutdown:pool-1"]


async def test_a_failing_startup_hook_stops_the_worker_before_any_claim(app: Corral) -> None:
    shutdowns: list[str] = []

    @app.on_startup
    def connect_db() -> None:
        raise OSError("db unreachable")

    @app.on_shutdown
    def never() -> None:
        shutdowns.append("ran")

    @app.task(name="hooks.waits")
    async def waits() -> None: ...

    job = await waits.enqueue()
    with pytest.raises(WorkerStartupFailed) as info:
        await asyncio.wait_for(Worker(app, ["default"]).run(), 5)
    message = str(info.value)
    assert message == (
        "on_startup hook test_a_failing_startup_hook_stops_the_worker_before_any_claim."
        "connect_db failed: OSError: db unreachable"
    )
    assert "\n" not in message
    await job.refresh()
    assert (job.state, job.attempts) == (JobState.WAITING, 0)
    assert shutdowns == []
    assert await app.workers() == []


async def test_a_cancelled_running_job_is_heard_once(app: Corral, workers: Workers) -> None:
    heard: list[tuple[str, str]] = []
    running = asyncio.Event()

    async def task_cancelled(event: JobEvent) -> None:
        heard.append((event.job_id, event.error_message))

    @app.on_started
    async def started(event: JobEvent) -> None:
        running.set()

    @app.task(name="hooks.forever", on_cancelled=task_cancelled)
    async def forever() -> None:
        await asyncio.Event().wait()

    worker = workers.start()
    job = await forever.enqueue()
    await asyncio.wait_for(running.wait(), 5)
    assert await job.cancel() is JobState.ACTIVE
    assert await job.wait(timeout=5) is JobState.CANCELLED
    await wait_until(lambda: bool(heard))
    await workers.stop(worker)
    assert heard == [(job.id, "JobCancelled: cancelled while running")]


async def test_a_job_failed_by_the_reaper_is_heard_as_failed(app: Corral, workers: Workers) -> None:
    failures: list[JobEvent] = []

    @app.on_failed
    async def failed(event: JobEvent) -> None:
        failures.append(event)

    @app.task(name="hooks.doomed")
    async def doomed() -> None: ...

    job = await doomed.enqueue()
    backend = await app.backend()
    claimed, _ = await backend.claim("default", 1, 100, "ghost-worker")  # never renewed
    assert [c.id for c in claimed] == [job.id]
    worker = workers.start(lease=0.4, max_stalls=0)
    assert await job.wait(timeout=5) is JobState.FAILED
    await wait_until(lambda: bool(failures))
    await workers.stop(worker)
    (event,) = failures
    assert (event.job_id, event.task, event.event, event.ctx) == (
        job.id,
        "hooks.doomed",
        "failed",
        None,
    )
    assert event.error is not None and event.error["type"].endswith("Stalled")


async def test_the_enqueuing_process_hears_enqueued_once_per_new_job(app: Corral) -> None:
    class Enqueued(Lifecycle):
        def __init__(self) -> None:
            self.seen: list[JobEvent] = []

        async def enqueued(self, event: JobEvent) -> None:
            self.seen.append(event)

    heard = Enqueued()
    app.add_listener(heard)

    @app.task(name="t.e")
    async def e(n: int) -> int:
        return n

    first = await e.options(job_id="same").enqueue(1)
    again = await e.options(job_id="same").enqueue(1)  # the same job: nothing new
    many = await e.enqueue_many([(2,), (3,)])
    await wait_until(lambda: len(heard.seen) >= 3)
    await asyncio.sleep(0.05)
    assert [(x.event, x.job_id, x.queue, x.task, x.attempt) for x in heard.seen] == [
        ("enqueued", first.id, "default", "t.e", 0),
        *[("enqueued", job.id, "default", "t.e", 0) for job in many],
    ]
    assert not again.created
