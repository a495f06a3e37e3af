"""``corral serve bench.dashboard_app:app`` in a subprocess, for the dashboard benchmarks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def served(url: str, stop_timeout: float = 10) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve the bench app on ``url``'s store on a free loopback port; yields the base
    URL and the process once ``/healthz`` answers, and stops it on the way out."""
    port = free_port()
    env = {
        **os.environ,
        "CORRAL_URL": url,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    command = [sys.executable, "-m", "corral", "serve", "bench.dashboard_app:app"]
    serve = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("corral serve did not start")
            time.sleep(0.2)
        yield base, serve
    finally:
        serve.terminate()
        serve.wait(stop_timeout)
