"""The examples the README points to run as written, on both backends."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "redis"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    url = (
        f"sqlite:///{tmp_path / 'ex.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("redis_url"))
    )
    return {
        **os.environ,
        "CORRAL_URL": url,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }


def run_example(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<script>`` as a user would; fails the test on a non-zero exit."""
    out = subprocess.run(
        [sys.executable, f"examples/{script}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out


def test_quickstart(env: dict[str, str]) -> None:
    out = run_example("quickstart.py", env)
    assert "sync: {'orders': 500}" in out.stdout
    assert "email: sent 'Welcome' to a@example.com" in out.stdout
    assert "webhook: job" in out.stdout and "is gone" in out.stdout
    assert "bulk: 100 jobs" in out.stdout


def test_tenants(env: dict[str, str]) -> None:
    out = run_example("tenants.py", env)
    assert "dedupe: same job: True created: False" in out.stdout
    done = int(out.stdout.split("small restaurant done after ")[1].split()[0])
    assert done < 30, out.stdout  # not behind the big restaurant's 200 jobs
    assert "args: ['r-7', 3]" in out.stdout


def test_flows(env: dict[str, str]) -> None:
    out = run_example("flows.py", env).stdout
    assert "chain: completed {'fetch': [70, 71, 72], 'parse': 3}" in out
    assert "chord: completed (61, 61) 7770" in out
    assert "fails-with-it: failed dependency menu failed: ConnectionError: menu API down" in out
    assert "skipped: cancelled dependency menu failed" in out
    assert "runs-anyway: completed" in out
    assert (
        "after retry: completed {'menu': 'menu ok', 'fails-with-it': {'menu': 'completed'}" in out
    )
    assert "spawn-and-wait: 510" in out


def test_heavy(env: dict[str, str]) -> None:
    out = run_example("heavy.py", env).stdout
    assert "report: 5 pages, in another process: True" in out
    assert "spin: failed after 1 attempt(s): corral.errors.JobTimeout" in out
    assert "hog: failed after 1 attempt(s): corral.errors.MemoryLimitExceeded" in out
    assert "crash: failed after 2 attempt(s): corral.errors.ChildProcessDied" in out
    assert "worker still fine" in out


def test_sync_producer_with_a_worker_process(env: dict[str, str]) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "corral", "worker", "examples.tasks:app", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        out = subprocess.run(
            [sys.executable, "examples/sync_producer.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        worker.terminate()
        worker.wait(15)
    assert out.returncode == 0, out.stderr
    assert "{'job_id': 'sync-restaurant-7', 'state': 'waiting'}" in out.stdout
    assert "result: {'orders': 300}" in out.stdout
    assert "'state': 'completed'" in out.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_fetch_example_enqueues_over_http(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CORRAL_URL": f"sqlite:///{tmp_path / 'ex.db'}",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "corral", *args, "examples.tasks:app", "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for args in (["serve", "--port", str(port)], ["worker"])
    ]
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        out = subprocess.run(
            ["node", "examples/enqueue.mjs"],
            cwd=ROOT,
            env={**env, "CORRAL_API": f"http://127.0.0.1:{port}"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(15)
    assert out.returncode == 0, out.stderr
    job_id, state, result = out.stdout.split(maxsplit=2)
    assert len(job_id) == 26
    assert state == "completed"
    assert result.strip() == '{"orders":300}'


def test_notifications(env: dict[str, str]) -> None:
    out = run_example("notifications.py", env)
    assert "result: {'orders': 5962}" in out.stdout
    assert "webhook: job.completed for job" in out.stdout
    assert "signature verified" in out.stdout and "refused" not in out.stdout
