"""Real ``corral worker`` processes: killed, stopped, signalled twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from corral import Corral, JobState
from tests.process.conftest import ROOT, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def app(redis_url: str) -> Iterator[Corral]:
    app = Corral(redis_url)
    yield app
    app.close_sync()


def _state(app: Corral, job_id: str) -> JobState:
    return app.get_job_sync(job_id, "proc").state


def test_sigkilled_worker_job_is_recovered_by_another(app: Corral, spawn_worker) -> None:
    first = spawn_worker("-q", "proc", "--lease", "1")
    job = app.enqueue_sync("proc.sleepy", [60], queue="proc")
    wait_until(lambda: _state(app, job.id) is JobState.ACTIVE)
    first.signal(signal.SIGKILL)
    first.wait(5)

    second = spawn_worker("-q", "proc", "--lease", "1")
    try:
        result = job.result_sync(timeout=15)
    except Exception:
        job.refresh_sync()
        print("job:", job.to_dict(), "\nsecond worker:", second.output())
        raise

    assert result["stalls"] == 1
    assert result["pid"] != first.proc.pid
    job.refresh_sync()
    assert job.state is JobState.COMPLETED
    assert job.stalls == 1
    assert job.attempts == 1  # the killed attempt was given back


def test_sigterm_lets_short_jobs_finish(app: Corral, spawn_worker) -> None:
    worker = spawn_worker("-q", "proc", "--grace", "10")
    job = app.enqueue_sync("proc.busy_sync", [0.5], queue="proc")
    wait_until(lambda: _state(app, job.id) is JobState.ACTIVE)
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert _state(app, job.id) is JobState.COMPLETED


def test_sigterm_hands_long_jobs_back_after_grace(app: Corral, spawn_worker) -> None:
    worker = spawn_worker("-q", "proc", "--grace", "0.3")
    job = app.enqueue_sync("proc.sleepy", [60], queue="proc")
    wait_until(lambda: _state(app, job.id) is JobState.ACTIVE)
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert time.monotonic() - started < 5
    job.refresh_sync()
    assert job.state is JobState.WAITING
    assert job.attempts == 0  # handed back without spending the attempt
    assert "handed 1 unfinished jobs" in worker.output()


def test_second_signal_stops_at_once(app: Corral, spawn_worker) -> None:
    worker = spawn_worker("-q", "proc", "--grace", "60")
    job = app.enqueue_sync("proc.sleepy", [60], queue="proc")
    wait_until(lambda: _state(app, job.id) is JobState.ACTIVE)
    worker.signal(signal.SIGINT)
    time.sleep(0.3)
    started = time.monotonic()
    worker.signal(signal.SIGINT)
    assert worker.wait(10) == 0
    assert time.monotonic() - started < 5
    assert _state(app, job.id) is JobState.WAITING


def test_workers_command_lists_live_worker(redis_url: str, spawn_worker) -> None:
    worker = spawn_worker("-q", "proc,other", "-c", "7")

    def listed() -> list[dict[str, object]]:
        out = subprocess.run(
            [sys.executable, "-m", "corral", "--url", redis_url, "workers", "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out)

    wait_until(lambda: len(listed()) == 1)
    (info,) = listed()
    assert info["pid"] == worker.proc.pid
    assert info["queues"] == ["proc", "other"]
    assert info["concurrency"] == 7
    worker.signal(signal.SIGTERM)
    worker.wait(10)
    assert listed() == []


@pytest.mark.parametrize("choice", ["auto", "asyncio", "uvloop"])
def test_worker_runs_on_the_chosen_event_loop(app: Corral, spawn_worker, choice: str) -> None:
    worker = spawn_worker("-q", "proc", "--loop", choice)
    job = app.enqueue_sync("proc.busy_sync", [0.01], queue="proc")
    job.result_sync(timeout=10)
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    expected = "asyncio" if choice == "asyncio" else "uvloop"
    assert f"loop={expected}" in worker.output()


def test_worker_refuses_an_unknown_event_loop(spawn_worker) -> None:
    worker = spawn_worker("--loop", "trio")
    assert worker.wait(10) == 2
    assert "'trio' is not one of 'auto', 'asyncio', 'uvloop'" in worker.output()
