"""A worker whose wall clock is wrong cannot run delayed jobs early or steal leases.

Delays, lease deadlines and stall detection use Redis's clock (TIME inside the
scripts); the worker's own timers are monotonic. ``faketime`` shifts only the
wall clock of the worker process under test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from corral import Corral, JobState
from tests.process.conftest import ROOT, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _faketime() -> None:
    """Skip without faketime on a developer's machine; in CI (``CI`` set) its absence
    is a failure, so the skewed-clock tests cannot quietly stop running there."""
    if shutil.which("faketime") is not None:
        return
    if os.environ.get("CI"):
        pytest.fail("faketime is not installed; CI must run the skewed-clock tests")
    pytest.skip(
        "faketime is not installed (scripts/test installs it as root; a failure with CI set)"
    )


def skewed_worker(url: str, shift: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CORRAL_URL": url,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # wall clock only, as with a bad NTP sync
    }
    return subprocess.Popen(
        [
            "faketime",
            "-f",
            shift,
            sys.executable,
            "-m",
            "corral",
            "worker",
            "tests.apps.basic:app",
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # faketime runs the worker as a child: kill the group
    )


@pytest.fixture
def app(redis_url: str) -> Iterator[Corral]:
    app = Corral(redis_url)
    yield app
    app.close_sync()


def _stop(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_faketime_really_shifts_the_wall_clock() -> None:
    out = subprocess.run(
        ["faketime", "-f", "+2h", sys.executable, "-c", "import time; print(time.time())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(out.stdout) - time.time() > 7000


@pytest.mark.parametrize("shift", ["+2h", "-2h"])
def test_skewed_worker_does_not_run_delayed_jobs_early(app: Corral, shift: str) -> None:
    worker = skewed_worker(app.url, shift, "-q", "proc")
    try:
        job = app.enqueue_sync("proc.echo", ["later"], queue="proc", delay=2.0)
        time.sleep(1.0)
        assert app.get_job_sync(job.id, "proc").state is JobState.DELAYED
        assert job.result_sync(timeout=10) == "later"
        job.refresh_sync()
        assert job.started_at is not None and job.created_at is not None
        assert (job.started_at - job.created_at).total_seconds() >= 1.9
    finally:
        _stop(worker)


def test_skewed_worker_does_not_expire_other_workers_leases(app: Corral, spawn_worker) -> None:
    # A healthy worker holds a 3 s job with a 1 s lease (renewed every ~0.33 s) while a
    # worker two hours ahead runs its stall reaper every 0.5 s on the same queue.
    spawn_worker("-q", "proc", "--lease", "1")
    job = app.enqueue_sync("proc.sleepy", [3.0], queue="proc")
    wait_until(lambda: app.get_job_sync(job.id, "proc").state is JobState.ACTIVE)
    skewed = skewed_worker(app.url, "+2h", "-q", "proc", "--lease", "1")
    try:
        result = job.result_sync(timeout=15)
    finally:
        _stop(skewed)
    job.refresh_sync()
    assert job.stalls == 0
    assert result["stalls"] == 0
    assert job.attempts == 1
