"""``corral demo --serve``: what it prints works as printed (URL, login key, the curl
command, the failed job's page), a worker keeps running, and Ctrl-C ends it cleanly."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.cli.run import ROOT, corral

LAST_LINE = "Ctrl-C stops."


class Demo:
    """``corral --url URL demo --serve ...`` running, its stdout read line by line."""

    def __init__(self, url: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "corral", "--url", url, "demo", "--serve", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "100"},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def output_until(self, marker: str, timeout: float = 30) -> str:
        seen: list[str] = []
        while not seen or marker not in seen[-1]:
            line = self.lines.get(timeout=timeout)
            assert line is not None, "".join(seen) + self._stderr()
            seen.append(line)
        return "".join(seen)

    def _stderr(self) -> str:
        self.proc.kill()
        return self.proc.communicate()[1]

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=15)
        return self.proc.returncode, err


@pytest.fixture
def demo(url: str) -> Iterator[Demo]:
    running = Demo(url, "--port", "0", "--jobs", "3")
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.communicate()


def test_what_it_prints_works_as_printed(demo: Demo) -> None:
    out = demo.output_until(LAST_LINE)
    found = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+)/\s+login key: (\S+)", out)
    assert found, out
    base, key = found[1], found[2]
    api = re.search(r"^API:\s+(curl .*)$", out, re.M)
    job_link = re.search(r"The failed job in the dashboard: (\S+)", out)
    assert api and job_link, out
    assert f"(login key: {key})" in out

    # The API command, run by a shell exactly as printed.
    listed = subprocess.run(["bash", "-c", api[1]], capture_output=True, text=True, timeout=15)
    assert listed.returncode == 0, listed.stderr
    assert '"name":"demo"' in listed.stdout and '"workers":1' in listed.stdout

    with httpx.Client(base_url=base, timeout=15) as http:
        assert http.get(job_link[1]).status_code == 303  # not logged in: to the login form
        login = http.post("/login", data={"key": key})
        assert login.status_code == 303, login.text
        page = http.get(job_link[1])
        assert page.status_code == 200
        assert job_link[1].rsplit("/", 1)[1] in page.text and "failed" in page.text

        # The worker left running picks up a job enqueued after the demo.
        auth = {"Authorization": f"Bearer {key}"}
        made = http.post(
            "/api/v1/jobs", json={"task": "demo.sync_orders", "args": ["x", 1]}, headers=auth
        )
        assert made.status_code == 201, made.text
        done = http.get(
            f"/api/v1/queues/demo/jobs/{made.json()['id']}/result?timeout=20", headers=auth
        )
        assert done.status_code == 200 and done.json()["state"] == "completed", done.text

    code, err = demo.stop()
    assert code == 0, err
    assert "Traceback" not in err


@pytest.mark.backends("sqlite")
def test_a_port_in_use_is_a_usage_error(url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = corral("demo", "--serve", "--port", str(port), url=url)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is in use: pick another with --port "
        "(0 takes any free one)"
    )


def test_port_without_serve_is_refused() -> None:
    out = corral("demo", "--port", "9000")
    assert out.returncode == 2
    assert "--port needs --serve" in out.stderr
