"""Processes the scenarios drive: a private redis-server and ``corral worker``s.

:class:`RedisProc` owns a redis-server on a free loopback port and its directory; it
can be SIGKILLed and restarted on the same port and directory (so the AOF is replayed).
:class:`WorkerProc` is one ``python -m corral worker`` process; :class:`Pool` keeps a
fixed number of them alive (a supervisor thread restarts any that exits) and records
each kill, crash and stop in the ledger. :class:`Ledger` lives in :mod:`chaos.ledger`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from chaos.ledger import Ledger
from corral import Corral

__all__ = ["ROOT", "Ledger", "Pool", "RedisProc", "WorkerProc", "free_port", "wait_until"]

ROOT = Path(__file__).resolve().parents[1]
CRASH_EXIT_CODE = 86


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass; returns whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


class RedisProc:
    """A redis-server of our own: ``options`` are extra config (``appendonly``, ...)."""

    def __init__(self, directory: Path, **options: str) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.options = {"save": "", "appendonly": "no", **options}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.exe = shutil.which("redis-server") or "redis-server"
        #: redis-py TLS options for a server that only speaks TLS (``tls_port``).
        self.tls: dict[str, object] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **self.tls)

    def version(self) -> str:
        with self.client() as client:
            return str(client.info("server")["redis_version"])

    def start(self) -> RedisProc:
        cmd = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "no"]
        cmd += ["--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")]
        for key, value in self.options.items():
            cmd += [f"--{key.replace('_', '-')}", value]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, **self.tls) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited at start: see {self.dir}/redis.log")
                try:
                    if int(client.info("server")["process_id"]) != self.proc.pid:
                        raise RuntimeError(f"port {self.port} is served by another Redis")
                    if client.info("persistence").get("loading", 0) == 0:
                        return self
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start")
                time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no final fsync."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


class WorkerProc:
    """One ``corral worker chaos.app:app`` process, its output in ``log``."""

    def __init__(self, url: str, ledger: str, log: Path, args: list[str], env: dict[str, str]):
        full_env = {**os.environ, **env, "CORRAL_URL": url, "CHAOS_LEDGER": ledger}
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "corral", "worker", "chaos.app:app", *args],
                cwd=ROOT,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.proc.send_signal(signum)

    def reap(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


class Pool:
    """``size`` workers kept alive: any that exits is restarted (after ``restart_delay``).

    Every exit is recorded in the ledger: ``sigkill`` (we killed it), ``crash`` (exit
    code 86, an injected fault), ``exit`` (another non-zero code), ``stopped`` (exit 0
    after our SIGTERM).
    """

    def __init__(
        self,
        size: int,
        url: str,
        ledger: Ledger,
        logs: Path,
        args: list[str],
        env: dict[str, str] | None = None,
        restart_delay: float = 0.0,
    ) -> None:
        self.url, self.ledger, self.logs = url, ledger, logs
        self.args, self.env, self.restart_delay = args, env or {}, restart_delay
        self.logs.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._started = 0
        self.all: list[WorkerProc] = []
        self.slots: list[WorkerProc] = [self._spawn() for _ in range(size)]
        self._intent: dict[int, str] = {}
        self._running = True
        self._thread = threading.Thread(target=self._supervise, name="chaos-pool", daemon=True)
        self._thread.start()

    def _spawn(self) -> WorkerProc:
        self._started += 1
        log = self.logs / f"worker-{self._started:03d}.log"
        worker = WorkerProc(self.url, self.ledger.path, log, self.args, self.env)
        self.all.append(worker)
        return worker

    def _supervise(self) -> None:
        while self._running:
            with self._lock:
                for i, worker in enumerate(self.slots):
                    code = worker.proc.poll()
                    if code is None:
                        continue
                    self._record_exit(worker, code)
                    if self._running:
                        if self.restart_delay:
                            time.sleep(self.restart_delay)
                        self.slots[i] = self._spawn()
            time.sleep(0.02)

    def _record_exit(self, worker: WorkerProc, code: int) -> None:
        intent = self._intent.pop(worker.pid, "")
        if intent == "sigkill" or code == -signal.SIGKILL:
            kind = "sigkill"
        elif code == CRASH_EXIT_CODE:
            kind = "crash"
        elif code == 0 and intent == "sigterm":
            kind = "stopped"
        else:
            kind = "exit"
        self.ledger.fault(kind, worker.pid, f"exit code {code}")

    def kill(self, index: int, signum: int = signal.SIGKILL) -> int:
        """Send ``signum`` to the worker in slot ``index``; returns its pid."""
        with self._lock:
            worker = self.slots[index]
            self._intent[worker.pid] = "sigkill" if signum == signal.SIGKILL else "sigterm"
            worker.signal(signum)
            return worker.pid

    def wait_ready(self, client: Corral, timeout: float = 30.0) -> bool:
        """Wait until every current worker has registered itself (it is connected)."""

        def ready() -> bool:
            try:
                live = {info.pid for info in client.workers_sync()}
            except Exception:
                return False
            return set(self.pids()) <= live

        return wait_until(ready, timeout, interval=0.05)

    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self.slots]

    def stop(self, grace: float = 10.0) -> None:
        """Stop supervising, SIGTERM every worker, SIGKILL what is left after ``grace``."""
        self._running = False
        self._thread.join()
        for worker in self.all:
            worker.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for worker in self.all:
            if worker.reap(max(0.1, deadline - time.monotonic())) is None:
                worker.signal(signal.SIGKILL)
                worker.reap(10)

    def logs_text(self) -> str:
        return "\n".join(w.log.read_text(errors="replace") for w in self.all if w.log.exists())
