"""corral.testing.run_until_idle: a real worker until the queues are idle, failures re-raised."""

from __future__ import annotations

import asyncio
import time

import pytest

from corral import Corral, JobContext, JobState
from corral.testing import IdleResult, IdleTimeout, JobError, run_until_idle, run_until_idle_sync


class NeedsTwo(Exception):
    """An exception that cannot be rebuilt from a message alone."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")


async def test_runs_jobs_and_the_jobs_they_enqueue_until_idle(app: Corral) -> None:
    done: list[str] = []

    @app.task(queue="second")
    def step_two(order: str) -> None:  # a sync task: run in the worker's threads
        done.append(f"two {order}")

    @app.task(queue="first")
    async def step_one(order: str) -> None:
        done.append(f"one {order}")
        await step_two.enqueue(order)

    @app.task(queue="first")
    async def later() -> None:
        done.append("later")

    await step_one.enqueue("a")
    await step_one.enqueue("b")
    delayed = await later.options(delay=3600).enqueue()
    result = await run_until_idle(app, timeout=10)
    assert sorted(done) == ["one a", "one b", "two a", "two b"]
    assert result == IdleResult(completed=4, failed=0)
    # A job delayed into the future is not waited for...
    assert (await delayed.refresh()).state is JobState.DELAYED
    # ...unless asked.
    assert await run_until_idle(app, run_delayed=True) == IdleResult(completed=1, failed=0)
    assert done[-1] == "later"
    # The worker is gone: nothing is left running or registered.
    assert await app.workers() == []


async def test_a_failure_is_raised_with_its_own_type_and_the_workers_traceback(
    app: Corral,
) -> None:
    @app.task(attempts=2, backoff=3600)  # an hour's backoff, skipped by default
    async def parse(text: str) -> int:
        return int(text)

    await parse.enqueue("12")
    await parse.enqueue("twelve")
    started = time.monotonic()
    with pytest.raises(ValueError, match="invalid literal for int") as caught:
        await run_until_idle(app, timeout=10)
    assert time.monotonic() - started < 8
    note = "\n".join(caught.value.__notes__)
    assert "(tests.testing.test_run_until_idle" in note and "attempt 2" in note
    assert "in parse\n    return int(text)" in note  # the worker's traceback
    (failed,) = await app.queue("default").jobs("failed")
    assert failed.args == ["twelve"] and failed.attempts == 2


async def test_raise_errors_false_counts_the_failures(app: Corral) -> None:
    @app.task(attempts=1)
    async def bad() -> None:
        raise RuntimeError("no")

    await bad.enqueue()
    assert await run_until_idle(app, raise_errors=False) == IdleResult(completed=0, failed=1)


async def test_an_exception_that_cannot_be_rebuilt_comes_as_job_error_with_the_traceback(
    app: Corral,
) -> None:
    @app.task(attempts=1)
    async def strict() -> None:
        raise NeedsTwo(409, "conflict")

    job = await strict.enqueue()
    with pytest.raises(JobError) as caught:
        await run_until_idle(app)
    error = caught.value
    assert error.job_id == job.id and error.task == strict.name
    assert "NeedsTwo: 409: conflict" in str(error)
    assert 'raise NeedsTwo(409, "conflict")' in str(error)  # the stored traceback


async def test_a_job_that_never_finishes_times_out_naming_it(app: Corral) -> None:
    @app.task(queue="slow")
    async def hang() -> None:
        await asyncio.sleep(60)

    job = await hang.enqueue()
    started = time.monotonic()
    with pytest.raises(IdleTimeout) as caught:
        await run_until_idle(app, timeout=0.5)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"slow: job {job.id} ({hang.name}) active, attempt 1" in message
    assert caught.value.pending == [("slow", job.id, hang.name, "active")]
    # The worker was stopped and the job handed back, not left leased.
    assert (await job.refresh()).state is JobState.WAITING


async def test_jobs_of_a_paused_queue_time_out_as_waiting(app: Corral) -> None:
    @app.task(queue="held")
    async def noop() -> None: ...

    job = await noop.enqueue()
    await app.queue("held").pause()
    with pytest.raises(IdleTimeout, match=f"held: job {job.id} .* waiting, not started"):
        await run_until_idle(app, timeout=0.3)


async def test_with_skip_backoff_false_it_waits_for_the_retry(app: Corral) -> None:
    @app.task(attempts=2, backoff=30)
    async def once_failing(ctx: JobContext) -> None:
        if ctx.attempt == 1:
            raise ValueError("first")

    job = await once_failing.enqueue()
    with pytest.raises(IdleTimeout, match="waiting out a retry backoff"):
        await run_until_idle(app, timeout=0.5, skip_backoff=False)
    assert (await job.refresh()).state is JobState.DELAYED
    assert await run_until_idle(app) == IdleResult(completed=1, failed=0)


async def test_only_the_queues_named_are_run(app: Corral) -> None:
    @app.task(queue="a")
    async def in_a() -> None: ...

    @app.task(queue="b")
    async def in_b() -> None: ...

    a, b = await in_a.enqueue(), await in_b.enqueue()
    await run_until_idle(app, ["a"])
    assert (await a.refresh()).state is JobState.COMPLETED
    assert (await b.refresh()).state is JobState.WAITING


def test_the_sync_twin_runs_the_worker_on_the_background_loop(sync_app: Corral) -> None:
    @sync_app.task()
    def double(n: int) -> int:
        return n * 2

    job = double.enqueue_sync(21)
    assert run_until_idle_sync(sync_app) == IdleResult(completed=1, failed=0)
    assert job.result_sync(timeout=1) == 42


async def test_a_failure_is_raised_at_once_even_while_another_job_hangs(app: Corral) -> None:
    @app.task(queue="work")
    async def hang() -> None:
        await asyncio.sleep(60)

    @app.task(queue="work", attempts=1)
    async def fail() -> None:
        raise ValueError("broken input")

    await hang.enqueue()
    await fail.enqueue()
    started = time.monotonic()
    with pytest.raises(ValueError, match="broken input"):
        await run_until_idle(app, timeout=30)
    assert time.monotonic() - started < 5
