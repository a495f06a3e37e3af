"""A sync task that outlives its timeout keeps its thread, but not a job slot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Corral, JobFailed, JobState
from tests.process.conftest import wait_until as wait_until_sync
from tests.worker.conftest import Workers, wait_until
from tests.worker.procs import ROOT, WorkerProc


@pytest.fixture
def unblock() -> Iterator[threading.Event]:
    """Released at teardown, so the stuck threads of a test end with it."""
    event = threading.Event()
    yield event
    event.set()


async def test_a_stuck_thread_does_not_take_the_slot_of_a_new_job(
    app: Corral, workers: Workers, unblock: threading.Event
) -> None:
    @app.task(name="stuck.sleeper", timeout=0.2, attempts=1)
    def sleeper() -> str:
        unblock.wait(60)  # ignores its timeout, as blocking code does
        return "late"

    @app.task(name="stuck.quick")
    def quick(n: int) -> int:
        return n

    worker = workers.start(concurrency=1, heartbeat=0.1)
    stuck = await sleeper.enqueue()
    with pytest.raises(JobFailed, match="timeout"):
        await stuck.result(timeout=5)
    job = await quick.enqueue(7)
    assert await job.result(timeout=5) == 7

    async def reported() -> bool:
        (info,) = await app.workers()
        return info.id == worker.id and info.stuck == 1 and info.active == 0

    await wait_until(reported)
    unblock.set()

    async def recovered() -> bool:
        (info,) = await app.workers()
        return info.stuck == 0

    await wait_until(recovered)
    await stuck.refresh()
    assert stuck.state is JobState.FAILED  # the late return changes nothing


@pytest.mark.slow
def test_a_worker_process_with_a_stuck_thread_stops_promptly(
    redis_url: str, tmp_path: Path
) -> None:
    app = Corral(redis_url)
    worker = WorkerProc(redis_url, tmp_path / "worker.log", "-q", "proc", "-c", "1")
    try:
        job = app.enqueue_sync("proc.busy_sync", [120], queue="proc", timeout=0.2, attempts=1)
        with pytest.raises(JobFailed, match="timeout"):
            job.result_sync(timeout=15)
        # The record is refreshed on the worker's heartbeat (every 5 s by default).
        wait_until_sync(lambda: [w.stuck for w in app.workers_sync()] == [1], timeout=15)
        listed = subprocess.run(
            [sys.executable, "-m", "corral", "--url", redis_url, "workers", "--json"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            capture_output=True,
            text=True,
            check=True,
        )
        assert [w["stuck"] for w in json.loads(listed.stdout)] == [1]
        worker.terminate()
        # Without daemon threads the process would live until the sleep ends (120 s).
        assert worker.proc.wait(15) == 0
        assert "ended (timeout), but its thread is still running" in worker.output()
    finally:
        worker.close()
        app.close_sync()
