"""Isolated tasks (``isolation="process"``): a real worker runs them in child processes
on each backend; timeouts, memory limits and crashes end the attempt, never the worker."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from corral import ConfigurationError, Corral, JobCancelled, JobFailed, JobState, chord
from corral.worker import IsolationSettings, Worker
from tests.apps import heavy
from tests.worker.conftest import Workers, wait_until
from tests.worker.procs import WorkerProc

FAST = IsolationSettings(kill_grace=0.3)


def isolated(app: Corral, fn: Any, **options: Any) -> Any:
    options.setdefault("attempts", 1)
    options.setdefault("queue", "heavy")
    return app.task(name=f"heavy.{fn.__name__}", isolation="process", **options)(fn)


def start(workers: Workers, **options: Any) -> Worker:
    return workers.start(["heavy"], isolation=options.pop("isolation", FAST), **options)


async def fails_with(job: Any, kind: str, timeout: float = 20) -> dict[str, Any]:
    with pytest.raises(JobFailed):
        await job.result(timeout=timeout)
    await job.refresh()
    assert job.state is JobState.FAILED
    assert job.error is not None
    assert job.error["type"] == kind, job.error
    error: dict[str, Any] = job.error
    return error


async def alive(app: Corral, worker: Worker, workers: Workers) -> None:
    """The worker still runs and still runs isolated jobs."""
    assert not workers.tasks[worker].done()
    add = app.tasks.get("heavy.add") or isolated(app, heavy.add)
    job = await add.enqueue(2, 3)
    assert await job.result(timeout=20) == 5


async def test_result_progress_and_logs_cross_from_the_child(app: Corral, workers: Workers) -> None:
    report = isolated(app, heavy.report)
    add_async = isolated(app, heavy.add_async)
    start(workers)
    job = await report.enqueue(3)
    assert await job.result(timeout=20) == job.id  # the child saw its job's context
    await job.refresh()
    assert job.progress == {"step": 3, "of": 3}
    (line,) = job.logs
    child_pid = int(line.rsplit(" ", 1)[1])
    assert line.startswith("did 3 steps in ") and child_pid != os.getpid()
    assert await (await add_async.enqueue(1, 2)).result(timeout=20) == 3


async def test_async_progress_and_retry_signals_from_the_child(
    app: Corral, workers: Workers
) -> None:
    report = isolated(app, heavy.report_async)
    retry = isolated(app, heavy.retry_once, attempts=2)
    give_up = isolated(app, heavy.give_up, attempts=3)
    start(workers)
    job = await report.enqueue(4)
    assert await job.result(timeout=20) == 4
    await job.refresh()
    assert job.progress == 4 and job.logs == ["async done"]
    job = await retry.enqueue()
    assert await job.result(timeout=20) == 2
    await job.refresh()
    assert job.errors[0]["type"] == "corral.errors.Retry"
    job = await give_up.enqueue()
    await fails_with(job, "corral.errors.NoRetry")
    assert job.attempts == 1  # NoRetry crossed as itself: no retry despite attempts=3


async def test_isolated_jobs_of_a_flow_read_their_dependencies(
    app: Corral, workers: Workers
) -> None:
    add = isolated(app, heavy.add)
    total = isolated(app, heavy.total)
    start(workers)
    run = await app.start_flow(chord([add.call(1, 2), add.call(3, 4)], total.call()))
    assert await run.wait(timeout=30) == "completed"
    assert run.results()["total"] == 10


async def test_an_isolated_task_spawns_children_and_waits_without_its_slot(
    app: Corral, workers: Workers
) -> None:
    app.task(name="heavy.double", queue="heavy")(heavy.double)
    spawn = isolated(app, heavy.spawn_pages)
    # One slot: the children can only run if the parked parent gave its slot up.
    start(workers, concurrency=1)
    job = await spawn.enqueue(5)
    assert await job.result(timeout=30) == sum(2 * n for n in range(5))
    await job.refresh()
    assert job.attempts == 1  # the parked run gave its attempt back
    child = await app.get_job(f"{job.id}.s0.4", queue="heavy")
    assert child.state is JobState.COMPLETED


async def test_an_isolated_task_waits_for_a_chain_of_children(
    app: Corral, workers: Workers
) -> None:
    app.task(name="heavy.double", queue="heavy")(heavy.double)
    spawn = isolated(app, heavy.spawn_chain)
    start(workers, concurrency=1)
    job = await spawn.enqueue(3)
    assert await job.result(timeout=30) == {"double": 6, "double#2": 12, "double#3": 24}


async def test_children_an_isolated_task_names_badly_fail_it_naming_why(
    app: Corral, workers: Workers
) -> None:
    spawn = isolated(app, heavy.spawn_none, attempts=3)
    start(workers)
    error = await fails_with(await spawn.enqueue(), "corral.errors.InvalidFlow")
    assert "at least one child" in error["message"]


async def test_an_exception_in_the_child_is_recorded_with_its_type_and_traceback(
    app: Corral, workers: Workers
) -> None:
    boom = isolated(app, heavy.boom, attempts=2, backoff=0.01)
    worker = start(workers)
    job = await boom.enqueue("bad input")
    error = await fails_with(job, "ValueError")
    assert error["message"] == "bad input"
    assert 'heavy.py", line' in error["traceback"]  # the child's own traceback
    assert job.attempts == 2  # retried per policy
    await alive(app, worker, workers)


async def test_infinite_cpu_loop_is_stopped_at_its_timeout(app: Corral, workers: Workers) -> None:
    spin = isolated(app, heavy.spin, timeout=0.5, attempts=2, backoff=0.01)
    worker = start(workers)
    job = await spin.enqueue()
    error = await fails_with(job, "corral.errors.JobTimeout")
    assert "timeout of 0.5 s" in error["message"] and "SIGTERM" in error["message"]
    assert job.attempts == 2
    await alive(app, worker, workers)


async def test_code_blocked_in_c_is_stopped_at_its_timeout(app: Corral, workers: Workers) -> None:
    c_sleep = isolated(app, heavy.c_sleep, timeout=0.5)
    worker = start(workers)
    job = await c_sleep.enqueue(60)
    error = await fails_with(job, "corral.errors.JobTimeout")
    assert "timeout of 0.5 s" in error["message"]
    assert job.attempts == 1
    await alive(app, worker, workers)


async def test_a_child_ignoring_sigterm_is_killed_after_the_grace(
    app: Corral, workers: Workers, tmp_path: Path
) -> None:
    stubborn = isolated(app, heavy.stubborn, timeout=1.0)
    worker = start(workers, concurrency=1)
    await alive(app, worker, workers)  # a child is up: the timeout is spent in the task
    marker = tmp_path / "pid"
    job = await stubborn.enqueue(str(marker))
    error = await fails_with(job, "corral.errors.JobTimeout")
    assert "SIGKILL 0.3 s after SIGTERM" in error["message"]
    with pytest.raises(ProcessLookupError):
        os.kill(int(marker.read_text()), 0)  # gone (and reaped)
    await alive(app, worker, workers)


async def test_memory_over_the_limit_kills_the_child(app: Corral, workers: Workers) -> None:
    hog = isolated(app, heavy.hog, memory_limit="256MB")
    worker = start(workers)
    job = await hog.enqueue(2048)  # 2 GiB against 256 MB
    error = await fails_with(job, "corral.errors.MemoryLimitExceeded")
    assert "memory_limit of 244 MiB" in error["message"]
    peak = int(error["message"].rsplit("peak ", 1)[1].split()[0])
    assert 256_000_000 < peak < 2 << 30
    assert job.attempts == 1
    await alive(app, worker, workers)


@pytest.mark.parametrize(
    ("fn", "args", "death"),
    [(heavy.exit_now, (3,), "exited with code 3"), (heavy.segfault, (), "killed by SIGSEGV")],
)
async def test_a_child_that_dies_fails_the_attempt_not_the_worker(
    app: Corral, workers: Workers, fn: Any, args: tuple[Any, ...], death: str
) -> None:
    task = isolated(app, fn, attempts=2, backoff=0.01)
    worker = start(workers)
    job = await task.enqueue(*args)
    error = await fails_with(job, "corral.errors.ChildProcessDied")
    assert death in error["message"]
    assert job.attempts == 2
    await alive(app, worker, workers)


async def test_cancel_kills_the_child(app: Corral, workers: Workers, tmp_path: Path) -> None:
    wait = isolated(app, heavy.wait_for_cancel)
    start(workers)
    marker = tmp_path / "pid"
    job = await wait.enqueue(str(marker))
    await wait_until(lambda: marker.exists() and marker.read_text() != "", timeout=20)
    child = int(marker.read_text())
    assert await job.cancel() is JobState.ACTIVE
    with pytest.raises(JobCancelled):
        await job.result(timeout=10)

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        # A zombie until reaped counts as gone: it runs nothing. It may be reaped
        # between the two looks, and then its /proc entry is gone too.
        try:
            stat = Path(f"/proc/{child}/stat").read_text()
        except (ProcessLookupError, FileNotFoundError):
            return True
        return stat.split(")")[1].split()[0] == "Z"

    await wait_until(gone, timeout=5)


async def test_children_are_reused_and_recycled_after_max_tasks_per_child(
    app: Corral, workers: Workers
) -> None:
    reused = app.task(name="heavy.pid", queue="heavy", isolation="process")(heavy.pid)
    worker = start(workers, concurrency=1)
    pids = [await (await reused.enqueue()).result(timeout=20) for _ in range(3)]
    assert len(set(pids)) == 1 and pids[0] != os.getpid()

    recycled = app.task(
        name="heavy.pid2", queue="heavy", isolation="process", max_tasks_per_child=2
    )(heavy.pid)
    first = pids[0]
    pids = [await (await recycled.enqueue()).result(timeout=20) for _ in range(5)]
    # The old child (3 jobs already) is replaced after its first job of this task,
    # then each fresh one after two.
    assert first == pids[0] != pids[1] == pids[2] != pids[3] == pids[4]
    assert worker._children.children == 0  # the last one was replaced after its second job


async def test_the_workers_own_process_keeps_its_lease_while_the_child_computes(
    app: Corral, workers: Workers
) -> None:
    """A child burning CPU for several leases does not stall its job."""
    burn = isolated(app, heavy.burn)
    start(workers, lease=0.5)
    job = await burn.enqueue(2.5)
    assert await job.result(timeout=20) > 0
    await job.refresh()
    assert job.stalls == 0 and job.attempts == 1


async def test_a_child_killed_from_outside_fails_the_attempt(
    app: Corral, workers: Workers, tmp_path: Path
) -> None:
    """What the kernel's OOM killer does: SIGKILL out of the blue."""
    wait = isolated(app, heavy.wait_for_cancel)
    worker = start(workers)
    marker = tmp_path / "pid"
    job = await wait.enqueue(str(marker))
    await wait_until(lambda: marker.exists() and marker.read_text() != "", timeout=20)
    os.kill(int(marker.read_text()), signal.SIGKILL)
    error = await fails_with(job, "corral.errors.ChildProcessDied")
    assert "killed by SIGKILL" in error["message"]
    await alive(app, worker, workers)


async def test_a_child_over_recycle_memory_after_a_job_is_replaced(
    app: Corral, workers: Workers
) -> None:
    keep = isolated(app, heavy.keep)
    start(workers, concurrency=1, isolation=IsolationSettings(recycle_memory="100MB"))
    small = [await (await keep.enqueue(1)).result(timeout=20) for _ in range(2)]
    assert small[0] == small[1]  # still under the threshold: reused
    big = await (await keep.enqueue(120)).result(timeout=20)
    assert big == small[0]
    after = await (await keep.enqueue(1)).result(timeout=20)
    assert after != big  # the leaky child was replaced


def test_bad_isolation_options_name_the_option() -> None:
    app = Corral("sqlite:///:memory:")
    cases = [
        ({"isolation": "thread"}, "isolation must be 'process'"),
        ({"isolation": "process", "memory_limit": "lots"}, "memory_limit must be"),
        ({"isolation": "process", "memory_limit": 10}, "memory_limit must be at least"),
        ({"isolation": "process", "max_tasks_per_child": 0}, "max_tasks_per_child must be"),
        ({"memory_limit": "1GB"}, "memory_limit applies to isolated tasks"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigurationError, match=message):
            app.task(name="t.bad", **options)(heavy.noop)

    def local() -> None: ...

    with pytest.raises(ConfigurationError, match="import by module path"):
        app.task(name="t.local", isolation="process")(local)
    with pytest.raises(ConfigurationError, match="kill_grace"):
        IsolationSettings(kill_grace=-1)
    with pytest.raises(ConfigurationError, match="recycle_memory"):
        IsolationSettings(recycle_memory="a lot")


async def test_a_shut_down_worker_leaves_no_child_behind(app: Corral, workers: Workers) -> None:
    pid_task = app.task(name="heavy.pid", queue="heavy", isolation="process")(heavy.pid)
    worker = start(workers)
    child = await (await pid_task.enqueue()).result(timeout=20)
    await workers.stop(worker)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["heavy.kill_worker", "heavy.kill_worker_isolated"])
async def test_a_job_that_kills_its_worker_each_time_ends_failed(
    producer: Corral, store_url: str, tmp_path: Path, task: str
) -> None:
    """The poison job: it SIGKILLs the whole worker process running it (in-process, or
    from an isolated child). Each loss expires its lease; past max_stalls (2) the job
    fails for good, and the next worker lives."""
    poison = producer.task(name=task, queue="poison", attempts=10)(heavy.kill_worker)
    job = await poison.enqueue()
    kills = 0
    for round in range(6):
        worker = WorkerProc(
            store_url,
            tmp_path / f"worker{round}.log",
            *("-q", "poison", "--lease", "0.5", "--max-stalls", "2", "--grace", "1"),
            app="tests.apps.heavy:app",
        )
        try:

            async def settled(worker: WorkerProc = worker) -> bool:
                return worker.proc.poll() is not None or (await job.refresh()).state in (
                    JobState.FAILED,
                    JobState.COMPLETED,
                )

            await wait_until(settled, timeout=30, interval=0.05)
            if worker.proc.poll() is not None:
                assert worker.proc.returncode == -signal.SIGKILL, worker.output()
                kills += 1
                continue
            assert job.state is JobState.FAILED, job.error
            # The worker that found the job failed still runs, and runs jobs.
            add = producer.task(name="heavy.add", queue="poison", isolation="process")(heavy.add)
            assert await (await add.enqueue(1, 1)).result(timeout=20) == 2
            assert worker.proc.poll() is None
            break
        finally:
            worker.close()
    assert kills == 3
    assert job.error is not None
    assert job.error["type"] == "Stalled"
    assert "lease expired 3 times" in job.error["message"]
    assert "max_stalls is 2" in job.error["message"]
    assert job.stalls == 3


async def test_a_function_the_child_cannot_import_fails_at_once(
    app: Corral, workers: Workers
) -> None:
    def vanished() -> None: ...

    vanished.__module__, vanished.__qualname__ = "tests.apps.no_such_module", "vanished"
    task = isolated(app, vanished, attempts=3)
    worker = start(workers)
    job = await task.enqueue()
    error = await fails_with(job, "corral.errors.UnknownTask")
    assert "cannot import tests.apps.no_such_module.vanished" in error["message"]
    assert job.attempts == 1  # permanent: retrying cannot help
    await alive(app, worker, workers)
