"""``corral serve --workers N``: N processes answer on one port, each with its own
backend connection (a real ``corral serve`` process, SQLite and Redis)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from chaos.harness import free_port

from corral import Corral
from tests.web.apps import QUEUE
from tests.web.serve_cmd import ROOT, serve_cmd, serve_env


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


@pytest.fixture
def two_workers(url: str) -> Iterator[str]:
    """``corral serve --workers 2`` on a free port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        serve_cmd("--port", str(port), "--workers", "2", "--log-level", "warning"),
        cwd=ROOT,
        env=serve_env(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=5)
        assert "Traceback" not in err, err


def _pids_answering(base: str, deadline: float) -> set[str]:
    """The X-Corral-Pid of /healthz answers, each on a new connection, until two
    differ or the deadline passes."""
    pids: set[str] = set()
    while len(pids) < 2 and time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{base}/healthz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.05)  # not listening yet
            continue
        assert answer.status_code == 200
        pids.add(answer.headers["x-corral-pid"])
    return pids


@pytest.mark.slow
async def test_two_processes_serve_one_port(two_workers: str, url: str) -> None:
    pids = _pids_answering(two_workers, time.monotonic() + 60)
    assert len(pids) == 2, f"only {pids} answered"
    assert str(os.getpid()) not in pids
    # Both take enqueues and bulk enqueues on the same store (each its own connection).
    bodies = [{"task": "web.echo", "args": [i]} for i in range(40)]
    for body in bodies:
        async with httpx.AsyncClient(base_url=two_workers) as fresh:  # a new connection
            response = await fresh.post("/api/v1/jobs", json=body)
            assert response.status_code == 201, response.text
    async with httpx.AsyncClient(base_url=two_workers) as http:
        response = await http.post("/api/v1/jobs/bulk", json={"jobs": bodies})
        assert response.status_code == 201, response.text
    app = Corral(url)
    try:
        assert (await app.queue(QUEUE).counts())["waiting"] == 80
    finally:
        await app.close()


@pytest.mark.parametrize("workers", ["0", "-1", "65", "two"])
def test_a_bad_worker_count_is_refused(sqlite_url: str, workers: str) -> None:
    done = subprocess.run(
        serve_cmd("--port", str(free_port()), "--workers", workers),
        cwd=ROOT,
        env=serve_env(sqlite_url),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 2, done.stderr
    assert "Invalid value for '--workers'" in done.stderr
    assert workers in done.stderr
    assert "Traceback" not in done.stderr
