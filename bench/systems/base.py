"""What every system adapter provides, and the worker-process plumbing they share.

An adapter enqueues (``one`` / ``bulk``) and names its worker command; the base class
times the enqueues, starts the workers as subprocesses (each in its own session, so
the whole tree can be stopped), stops them and reads their memory and CPU time from
``/proc``. Enqueues run in the harness process, except for systems installed in
another environment (``venv``) or language: those run in a producer process of their
own (``python -m systems.producer``, or Node's producer.mjs), which times itself and
prints one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from systems import procfs
from systems.common import STARTS


@dataclass
class Context:
    """Where a run happens: the Redis URL, the bench directory and a scratch directory."""

    redis_url: str
    bench_dir: Path
    work_dir: Path
    python: str = sys.executable


@dataclass
class Worker:
    cmd: list[str]
    proc: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)


class System:
    id: ClassVar[str] = ""
    label: ClassVar[str] = ""
    package: ClassVar[str] = ""
    bulk_api: ClassVar[str] = ""
    settings: ClassVar[dict[str, Any]] = {}
    # Caps for slow systems (recorded in the results): {"one", "bulk", "drain", "samples",
    # "large"}: at most that many jobs (or latency probes) per run.
    caps: ClassVar[dict[str, int]] = {}
    # The scenario letters this system runs ("" = all): the extra Corral rows run a few.
    only: ClassVar[str] = ""
    # True for the systems of the embedded scenarios (k, l, m: one SQLite file, no
    # server): Corral on SQLite and the embedded peers. Only they run those scenarios.
    embedded: ClassVar[bool] = False
    # Scenarios this system cannot run, with the reason (shown in the tables).
    cannot: ClassVar[dict[str, str]] = {}
    # Versions shown next to the package's (redis-py is added for Python systems).
    extra_packages: ClassVar[tuple[str, ...]] = ()
    # A virtualenv under bench/.venv/ for peers whose pins clash with the main one
    # (arq and BullMQ's Python port need redis-py < 6); "" = the harness's own.
    venv: ClassVar[str] = ""
    # True for asyncio peers: their workers get uvloop as asyncio's default loop, as
    # Corral's worker runs by default (bench/sitecustomize.py).
    uvloop: ClassVar[bool] = False

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.workers: list[Worker] = []
        self._spawned = 0
        # CPU seconds of the out-of-process producer and of Redis in its last timed
        # enqueues, as it reported them.
        self.producer_cpu: float | None = None
        self.producer_redis_cpu: float | None = None

    # -- to implement ----------------------------------------------------------------

    async def one(self, i: int, kind: str) -> None:
        """Enqueue one job; kind is "incr" (the unit of work), "noop" (the empty body)
        or "stamp" (latency probe): see systems/common.py."""
        raise NotImplementedError

    async def bulk(self, n: int, kind: str = "incr") -> None:
        """Enqueue n ``kind`` jobs with the library's bulk API (or a loop; see bulk_api)."""
        raise NotImplementedError

    def worker_commands(self, processes: int) -> list[list[str]]:
        """The commands that make up ``processes`` worker processes."""
        raise NotImplementedError

    def worker_env(self) -> dict[str, str]:
        return {}

    async def open(self) -> None:
        """Connect the producer."""

    async def close(self) -> None:
        """Disconnect the producer."""

    async def reset(self) -> None:
        """Forget all jobs (Redis is flushed by the harness; other stores do it here)."""

    async def store_bytes(self, redis: Any) -> int:
        """Bytes used by the job store (Redis used_memory by default)."""
        return int((await redis.info("memory"))["used_memory"])

    def python(self) -> str:
        """The interpreter of this system's producer and workers."""
        if not self.venv:
            return self.ctx.python
        return str(self.ctx.bench_dir / ".venv" / self.venv / "bin" / "python")

    def out_of_process(self) -> bool:
        """True when the enqueues must run in a producer process of their own."""
        here = Path(sys.prefix).resolve()
        return bool(self.venv) and here != (self.ctx.bench_dir / ".venv" / self.venv).resolve()

    def producer_command(self, *args: Any) -> list[str]:
        return [self.python(), "-m", "systems.producer", self.id, *map(str, args)]

    async def produce(self, *args: Any) -> dict[str, Any]:
        """Run the out-of-process producer; returns the JSON object it prints."""
        env = {**os.environ, "BENCH_REDIS_URL": self.ctx.redis_url}
        env["PYTHONPATH"] = str(self.ctx.bench_dir)
        proc = await asyncio.create_subprocess_exec(
            *self.producer_command(*args),
            cwd=self.ctx.bench_dir,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"producer {args} failed: {err.decode(errors='replace')[-800:]}")
        result: dict[str, Any] = json.loads(out.splitlines()[-1])
        self.producer_cpu = result.get("cpu")
        self.producer_redis_cpu = result.get("redis_cpu")
        return result

    def version(self) -> str:
        names = (self.package, *self.extra_packages, "redis")
        if self.out_of_process():
            code = "import importlib.metadata as m, sys; print(*map(m.version, sys.argv[1:]))"
            out = subprocess.run(
                [self.python(), "-c", code, *names], capture_output=True, text=True
            )
            if out.returncode != 0:
                raise RuntimeError(f"{self.python()} cannot report versions: {out.stderr[-500:]}")
            versions = out.stdout.split()
        else:
            versions = [importlib.metadata.version(name) for name in names]
        labels = ["redis-py" if n == "redis" else n for n in names]
        extras = [f"{n} {v}" for n, v in zip(labels[1:], versions[1:], strict=True)]
        return f"{versions[0]} ({', '.join(extras)})"

    def tool(self, name: str) -> str:
        """A console script installed next to the interpreter (bench/.venv/bin)."""
        return str(Path(self.python()).parent / name)

    # -- shared ----------------------------------------------------------------------

    async def enqueue_one(self, n: int, kind: str = "incr") -> float:
        """Enqueue n jobs one call at a time; returns the seconds it took."""
        if self.out_of_process():
            return float((await self.produce("one", n))["elapsed"])
        start = time.perf_counter()
        for i in range(n):
            await self.one(i, kind)
        return time.perf_counter() - start

    async def enqueue_bulk(self, n: int, kind: str = "incr") -> float:
        if self.out_of_process():
            return float((await self.produce("bulk", n, kind))["elapsed"])
        start = time.perf_counter()
        await self.bulk(n, kind)
        return time.perf_counter() - start

    async def fill(self, n: int, chunk: int = 20_000) -> float:
        """Pre-fill n waiting jobs with the bulk API in chunks; returns the seconds taken."""
        if self.out_of_process():
            return float((await self.produce("fill", n))["elapsed"])
        start = time.perf_counter()
        for first in range(0, n, chunk):
            await self.bulk(min(chunk, n - first))
        return time.perf_counter() - start

    async def latency(self, samples: int, gap: float, redis: Any) -> list[float]:
        """Enqueue→start seconds for ``samples`` probes, one at a time on an idle worker.
        The clock starts just before the enqueue call; the job records when it started."""
        if self.out_of_process():
            return [float(x) for x in (await self.produce("latency", samples, gap))["latencies"]]
        out = []
        for i in range(samples):
            sent = time.time()
            await self.one(i, "stamp")
            reply = await redis.blpop([STARTS], timeout=30)
            if reply is None:
                raise RuntimeError(f"latency probe {i} did not start within 30 s")
            out.append(float(reply[1]) - sent)
            await asyncio.sleep(gap)
        return out

    def start_workers(self, processes: int) -> None:
        env = {
            **os.environ,
            "BENCH_REDIS_URL": self.ctx.redis_url,
            "PYTHONPATH": str(self.ctx.bench_dir),
            "PYTHONUNBUFFERED": "1",
            **({"BENCH_LOOP": "uvloop"} if self.uvloop else {}),
            **self.worker_env(),
        }
        for cmd in self.worker_commands(processes):
            self._spawned += 1
            log = self.ctx.work_dir / f"{self.id}-worker-{self._spawned}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    cmd,
                    cwd=self.ctx.bench_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.workers.append(Worker(cmd, proc, log))

    def check_workers(self) -> None:
        """Raise when a worker process has exited (with the end of its log)."""
        for worker in self.workers:
            code = worker.proc.poll()
            if code is not None:
                tail = worker.log.read_text(errors="replace")[-1500:]
                raise RuntimeError(f"worker {' '.join(worker.cmd)} exited with {code}:\n{tail}")

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM each worker's process group, SIGKILL what is left after ``timeout``
        (nothing measured depends on a graceful shutdown)."""
        workers, self.workers = self.workers, []
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for worker in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait()

    def worker_pids(self) -> list[int]:
        return [p for w in self.workers for p in procfs.tree(w.proc.pid)]

    def worker_memory(self) -> dict[str, Any]:
        """RSS and PSS (KiB) summed over every worker process tree, and how many processes."""
        return procfs.memory(self.worker_pids())

    def worker_cpu(self) -> float:
        """CPU seconds used so far by the worker process trees (reaped children included)."""
        return procfs.cpu_seconds(self.worker_pids())
