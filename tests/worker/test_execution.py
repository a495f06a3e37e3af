"""Running jobs: results, threads, retries, failures, timeouts, progress, context."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from corral import (
    Corral,
    CorralError,
    JobContext,
    JobFailed,
    JobState,
    NoRetry,
    Retry,
    current_job,
)
from tests.worker.conftest import Workers, wait_until


async def test_async_task_result(app: Corral, workers: Workers) -> None:
    @app.task(name="math.add")
    async def add(a: int, b: int = 0) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"sum": a + b}

    workers.start()
    job = await add.enqueue(2, b=40)
    assert await job.result(timeout=5) == {"sum": 42}
    await job.refresh()
    assert job.state is JobState.COMPLETED
    assert job.return_value == {"sum": 42}
    assert job.attempts == 1
    assert job.errors == []
    assert job.started_at is not None and job.finished_at is not None
    assert job.created_at is not None
    assert job.created_at <= job.started_at <= job.finished_at
    counts = await app.queue("default").counts()
    assert (counts["waiting"], counts["active"], counts["completed"]) == (0, 0, 1)


async def test_sync_task_runs_in_a_worker_thread(app: Corral, workers: Workers) -> None:
    loop_thread = threading.current_thread()

    @app.task(name="cpu.work")
    def work(n: int) -> dict[str, object]:
        thread = threading.current_thread()
        return {
            "square": n * n,
            "main": thread is threading.main_thread(),
            "loop_thread": thread is loop_thread,
            "name": thread.name,
        }

    assert not work.is_async
    workers.start()
    job = await work.enqueue(9)
    result = await job.result(timeout=5)
    assert result["square"] == 81
    assert result["main"] is False
    assert result["loop_thread"] is False
    assert str(result["name"]).startswith("corral-job")


async def test_many_jobs_run_concurrently_up_to_the_limit(app: Corral, workers: Workers) -> None:
    running = 0
    peak = 0

    @app.task(name="conc.job")
    async def job_fn(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.1)
        running -= 1
        return n

    jobs = await job_fn.enqueue_many([(n,) for n in range(9)])
    workers.start(concurrency=3)
    results = await asyncio.gather(*(job.result(timeout=5) for job in jobs))
    assert results == list(range(9))
    assert peak == 3


async def test_retries_with_backoff_then_success(app: Corral, workers: Workers) -> None:
    seen: list[tuple[int, float]] = []

    class Flaky(Exception):
        pass

    @app.task(name="flaky.job", attempts=3, backoff=0.05)
    async def flaky(ctx: JobContext, n: int) -> int:
        seen.append((ctx.attempt, time.monotonic()))
        if ctx.attempt < 3:
            raise Flaky(f"failure number {ctx.attempt}")
        return n * 2

    workers.start()
    job = await flaky.enqueue(21)
    assert await job.result(timeout=5) == 42
    assert [attempt for attempt, _ in seen] == [1, 2, 3]
    # the backoff was waited between attempts
    assert seen[1][1] - seen[0][1] >= 0.045
    assert seen[2][1] - seen[1][1] >= 0.045
    await job.refresh()
    assert job.state is JobState.COMPLETED
    assert job.attempts == 3
    errors = job.errors
    assert len(errors) == 2
    for number, error in enumerate(errors, start=1):
        assert error["type"].endswith("test_retries_with_backoff_then_success.<locals>.Flaky")
        assert error["message"] == f"failure number {number}"
        assert error["attempt"] == number
        assert "Traceback (most recent call last)" in error["traceback"]
        assert "raise Flaky" in error["traceback"]
        assert isinstance(error["at"], int)
    assert job.error == errors[-1]


async def test_attempts_used_up_fails_the_job(app: Corral, workers: Workers) -> None:
    runs = 0

    @app.task(name="always.fails", attempts=2, backoff=0)
    def always_fails() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("still broken")

    workers.start()
    job = await always_fails.enqueue()
    with pytest.raises(JobFailed) as info:
        await job.result(timeout=5)
    assert info.value.job_id == job.id
    assert info.value.error["type"] == "RuntimeError"
    assert info.value.error["message"] == "still broken"
    assert "RuntimeError: still broken" in str(info.value)
    assert runs == 2
    await job.refresh()
    assert job.state is JobState.FAILED
    assert job.attempts == 2
    assert [e["attempt"] for e in job.errors] == [1, 2]
    assert job.finished_at is not None
    counts = await app.queue("default").counts()
    assert (counts["failed"], counts["waiting"], counts["delayed"], counts["active"]) == (
        1,
        0,
        0,
        0,
    )


async def test_per_job_attempts_override(app: Corral, workers: Workers) -> None:
    runs = 0

    @app.task(name="override.attempts", attempts=1, backoff=0)
    async def fails() -> None:
        nonlocal runs
        runs += 1
        raise ValueError("x")

    workers.start()
    job = await fails.options(attempts=3).enqueue()
    with pytest.raises(JobFailed):
        await job.result(timeout=5)
    assert runs == 3


async def test_no_retry_fails_after_one_attempt(app: Corral, workers: Workers) -> None:
    runs = 0

    @app.task(name="no.retry", attempts=5, backoff=0)
    async def refuse(x: int) -> None:
        nonlocal runs
        runs += 1
        raise NoRetry(f"input {x} can never work")

    workers.start()
    job = await refuse.enqueue(7)
    with pytest.raises(JobFailed, match="input 7 can never work"):
        await job.result(timeout=5)
    assert runs == 1
    await job.refresh()
    assert job.state is JobState.FAILED
    assert job.attempts == 1
    assert len(job.errors) == 1
    assert job.error is not None
    assert job.error["type"] == "corral.errors.NoRetry"


async def test_retry_without_counting_the_attempt(app: Corral, workers: Workers) -> None:
    seen: list[tuple[int, float]] = []

    @app.task(name="rate.limited", attempts=1)
    async def limited(ctx: JobContext) -> str:
        seen.append((ctx.attempt, time.monotonic()))
        if len(seen) < 3:
            raise Retry("upstream says slow down", delay=0.1, count_attempt=False)
        return "through"

    workers.start()
    job = await limited.enqueue()
    assert await job.result(timeout=5) == "through"
    # attempts=1, yet it ran three times: the retries did not spend the attempt
    assert [attempt for attempt, _ in seen] == [1, 1, 1]
    assert seen[1][1] - seen[0][1] >= 0.09
    assert seen[2][1] - seen[1][1] >= 0.09
    await job.refresh()
    assert job.attempts == 1
    assert [e["message"] for e in job.errors] == ["upstream says slow down"] * 2


async def test_retry_that_counts_runs_out(app: Corral, workers: Workers) -> None:
    runs = 0

    @app.task(name="retry.counts", attempts=2)
    async def again() -> None:
        nonlocal runs
        runs += 1
        raise Retry(delay=0.01)

    workers.start()
    job = await again.enqueue()
    with pytest.raises(JobFailed):
        await job.result(timeout=5)
    assert runs == 2


async def test_timeout_fails_the_job_and_the_worker_goes_on(app: Corral, workers: Workers) -> None:
    @app.task(name="too.slow", attempts=1, timeout=0.2)
    async def too_slow() -> str:
        await asyncio.sleep(5)
        return "never"

    @app.task(name="quick")
    async def quick() -> str:
        return "ok"

    workers.start(concurrency=1)
    started = time.monotonic()
    job = await too_slow.enqueue()
    with pytest.raises(JobFailed) as info:
        await job.result(timeout=5)
    assert time.monotonic() - started < 2
    assert "JobTimeout" in info.value.error["type"]
    assert "0.2" in info.value.error["message"]
    # the worker's only slot is free again
    assert await (await quick.enqueue()).result(timeout=5) == "ok"


async def test_unknown_task_fails_and_the_worker_goes_on(
    app: Corral, producer: Corral, workers: Workers
) -> None:
    @app.task(name="known")
    async def known() -> str:
        return "fine"

    workers.start()
    job = await producer.enqueue("nope.task", [1, 2])
    with pytest.raises(JobFailed) as info:
        await job.result(timeout=5)
    assert info.value.error["type"] == "corral.errors.UnknownTask"
    assert "'nope.task'" in info.value.error["message"]
    assert "is registered in this worker" in info.value.error["message"]
    await job.refresh()
    assert job.attempts == 1
    assert await (await known.enqueue()).result(timeout=5) == "fine"


async def test_arguments_that_do_not_fit_fail_the_job(
    app: Corral, producer: Corral, workers: Workers
) -> None:
    @app.task(name="math.mul")
    async def mul(a: int, b: int) -> int:
        return a * b

    workers.start()
    bad = await producer.enqueue("math.mul", [1, 2, 3])
    wrong_kw = await producer.enqueue("math.mul", [1], {"c": 2})
    good = await producer.enqueue("math.mul", [6, 7])
    for job in (bad, wrong_kw):
        with pytest.raises(JobFailed) as info:
            await job.result(timeout=5)
        assert info.value.error["type"] == "corral.errors.InvalidArguments"
        assert "'math.mul'" in info.value.error["message"]
        assert (await job.refresh()).attempts == 1  # permanent: no retries
    assert await good.result(timeout=5) == 42


async def test_non_json_result_fails_the_job(app: Corral, workers: Workers) -> None:
    runs = 0

    @app.task(name="bad.result", attempts=3, backoff=0)
    async def bad_result() -> object:
        nonlocal runs
        runs += 1
        return {1, 2, 3}

    workers.start()
    job = await bad_result.enqueue()
    with pytest.raises(JobFailed) as info:
        await job.result(timeout=5)
    assert info.value.error["type"] == "corral.errors.SerializationError"
    assert "result of task 'bad.result'" in info.value.error["message"]
    assert runs == 1


async def test_progress_and_logs_are_visible_while_running(
    app: Corral, producer: Corral, workers: Workers
) -> None:
    reported = asyncio.Event()
    release = asyncio.Event()

    @app.task(name="long.report")
    async def report(ctx: JobContext, pages: int) -> str:
        assert await ctx.progress({"page": 1, "pages": pages})
        assert await ctx.log("started", f"{pages} pages")
        reported.set()
        await release.wait()
        await ctx.progress(100)
        await ctx.log("done")
        return "report.pdf"

    workers.start()
    job = await report.enqueue(40)
    await asyncio.wait_for(reported.wait(), 5)
    # another handle, through another app's connection
    other = await producer.get_job(job.id)
    assert other.state is JobState.ACTIVE
    assert other.progress == {"page": 1, "pages": 40}
    assert other.logs == ["started", "40 pages"]
    assert other.attempts == 1
    assert other.started_at is not None
    assert (await producer.queue("default").counts())["active"] == 1
    release.set()
    assert await job.result(timeout=5) == "report.pdf"
    await other.refresh()
    assert other.progress == 100
    assert other.logs == ["started", "40 pages", "done"]


async def test_sync_task_progress_and_logs(app: Corral, workers: Workers) -> None:
    reported = threading.Event()
    release = threading.Event()

    @app.task(name="sync.report")
    def report(ctx: JobContext) -> str:
        assert ctx.progress_sync(0.5)
        assert ctx.log_sync("halfway")
        reported.set()
        release.wait(5)
        return "ok"

    workers.start()
    job = await report.enqueue()
    await wait_until(lambda: reported.is_set())
    await job.refresh()
    assert (job.state, job.progress, job.logs) == (JobState.ACTIVE, 0.5, ["halfway"])
    release.set()
    assert await job.result(timeout=5) == "ok"


async def test_sync_progress_inside_an_async_task_is_refused(app: Corral, workers: Workers) -> None:
    @app.task(name="wrong.twin")
    async def wrong(ctx: JobContext) -> str:
        try:
            ctx.progress_sync(1)
        except CorralError as exc:
            return str(exc)
        return "no error"

    workers.start()
    message = await (await wrong.enqueue()).result(timeout=5)
    assert "await ctx.progress()" in message


async def test_current_job_in_async_and_sync_tasks(app: Corral, workers: Workers) -> None:
    def describe() -> dict[str, object]:
        ctx = current_job()
        return {"id": ctx.id, "queue": ctx.queue, "name": ctx.name, "attempt": ctx.attempt}

    @app.task(name="cj.async", queue="cj")
    async def in_async() -> dict[str, object]:
        await asyncio.sleep(0)
        return describe()

    @app.task(name="cj.sync", queue="cj")
    def in_sync() -> dict[str, object]:
        return describe()

    with pytest.raises(CorralError, match="outside a running job"):
        current_job()
    workers.start(["cj"])
    a = await in_async.enqueue()
    s = await in_sync.enqueue()
    assert await a.result(timeout=5) == {
        "id": a.id,
        "queue": "cj",
        "name": "cj.async",
        "attempt": 1,
    }
    assert await s.result(timeout=5) == {"id": s.id, "queue": "cj", "name": "cj.sync", "attempt": 1}
    # and it does not leak out of the job
    with pytest.raises(CorralError):
        current_job()


async def test_context_parameter_is_not_part_of_the_signature(
    app: Corral, workers: Workers
) -> None:
    @app.task(name="ctx.sig")
    async def with_ctx(ctx: JobContext, a: int) -> list[object]:
        return [ctx.id, ctx.max_attempts, a]

    assert with_ctx.wants_context
    workers.start()
    job = await with_ctx.enqueue(5)
    assert await job.result(timeout=5) == [job.id, 3, 5]


@pytest.mark.backends("redis")  # ctx.redis is the Redis backend's own client
async def test_ctx_redis_is_the_workers_own_client(app: Corral, workers: Workers) -> None:
    @app.task(name="count.visit")
    async def visit(ctx: JobContext, page: str) -> int:
        return int(await ctx.redis.incr(f"visits:{page}"))

    workers.start(concurrency=10)
    jobs = await visit.enqueue_many([("home",)] * 20)
    results = [await job.result(timeout=5) for job in jobs]
    assert sorted(results) == list(range(1, 21))


@pytest.mark.backends("sqlite")
async def test_ctx_redis_on_sqlite_names_the_backend(app: Corral, workers: Workers) -> None:
    @app.task(name="count.visit")
    async def visit(ctx: JobContext) -> str:
        try:
            ctx.redis  # noqa: B018
        except CorralError as exc:
            return str(exc)
        return "no error"

    workers.start()
    message = await (await visit.enqueue()).result(timeout=5)
    assert "ctx.redis needs the Redis backend" in message
    assert "SQLite" in message
