"""A throwaway redis-server subprocess for tests.

Never touches a Redis the tests did not start: each server gets its own free loopback port,
its own temporary directory, and no persistence.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 5.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class RedisServerError(RuntimeError):
    pass


class RedisServer:
    def __init__(self, executable: str = "redis-server") -> None:
        self.executable = executable
        self.port: int = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: Path | None = None

    @property
    def url(self) -> str:
        if self._proc is None:
            raise RedisServerError("RedisServer is not running")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RedisServerError("RedisServer is not running")
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        assert self._tmpdir is not None
        return self._tmpdir / "redis.log"

    def start(self) -> RedisServer:
        if self._proc is not None:
            raise RedisServerError("RedisServer already started")
        exe = shutil.which(self.executable)
        if exe is None:
            raise RedisServerError(
                f"{self.executable!r} not found on PATH; install redis-server to run the tests"
            )
        self._tmpdir = Path(tempfile.mkdtemp(prefix="corral-redis-"))
        # The port can be grabbed by someone else between picking it and redis binding it:
        # retry once with a fresh port.
        last_error: RedisServerError | None = None
        for _attempt in range(2):
            try:
                self._start_once(exe)
                return self
            except RedisServerError as exc:
                last_error = exc
        self._cleanup_tmpdir()
        assert last_error is not None
        raise last_error

    def _start_once(self, exe: str) -> None:
        assert self._tmpdir is not None
        self.port = _free_port()
        self.log_path.unlink(missing_ok=True)
        cmd = [
            exe,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self._tmpdir),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while True:
                if self._proc.poll() is not None:
                    code = self._proc.returncode
                    err = self._proc.stderr.read() if self._proc.stderr else b""
                    self._terminate()
                    raise RedisServerError(
                        f"redis-server exited (code {code}) during startup on port {self.port}:\n"
                        f"{err.decode(errors='replace')}{self._log_tail()}"
                    )
                try:
                    if client.ping():
                        pid = int(client.info("server")["process_id"])
                        if pid == self._proc.pid:
                            return
                        # Someone else's Redis grabbed the port first: leave it alone.
                        self._terminate()
                        raise RedisServerError(
                            f"port {self.port} is served by another redis (pid {pid}), not ours"
                        )
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    self._terminate()
                    raise RedisServerError(
                        f"redis-server on port {self.port} did not answer PING within "
                        f"{_START_TIMEOUT}s:\n{self._log_tail()}"
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no redis log)"
        return "\n".join(text.splitlines()[-lines:])

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def _cleanup_tmpdir(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def stop(self) -> None:
        self._terminate()
        self._cleanup_tmpdir()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
