"""The harness's own redis-server: a free loopback port, a temp dir, no persistence."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnRedis:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="corral-bench-redis-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
        for _ in range(3):
            self.port = _free_port()
            cmd = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            cmd += ["--appendonly", "no", "--dir", str(self.dir), "--logfile", "redis.log"]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            if self._wait_ready():
                return self
            self._kill()
        raise RuntimeError(f"could not start redis-server (log in {self.dir})")

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    # Ours, not a server that grabbed the port in between.
                    return int(client.info("server")["process_id"]) == self.proc.pid
                except redis.RedisError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def redis_url(given: str | None) -> Iterator[str]:
    """``given``, else the URL of a private redis-server for the block: the scripts
    that take ``--redis`` flush the database they are given, so they never default to
    a Redis someone else may use."""
    if given is not None:
        yield given
        return
    own = OwnRedis().start()
    try:
        yield own.url
    finally:
        own.stop()
