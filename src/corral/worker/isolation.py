"""Process isolation: the jobs of tasks registered with ``isolation="process"`` run in
child processes that the worker supervises.

The worker's event loop keeps the lease (however hard the child computes), relays the
child's progress and log lines to the store, samples the child's resident memory and
stops the child for real: past the job's ``timeout`` with SIGTERM, then SIGKILL after
``kill_grace`` seconds; past ``memory_limit`` with SIGKILL at once. A child that dies
fails the attempt (retried per the task's policy), never the worker.

Children are started with multiprocessing's ``forkserver`` method (not a fork of the
busy, threaded worker), so a task must be importable by module path in a fresh
interpreter: a module-level function (decorated or not) of an importable module. Its
arguments and result cross as JSON, like every job's. Children are reused; one is
replaced after the task's ``max_tasks_per_child`` jobs, or when its resident memory
after a job is over ``recycle_memory``; starts are serialised (one at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

import orjson

from corral.errors import (
    ChildProcessDied,
    ConfigurationError,
    InvalidArguments,
    JobCancelled,
    JobTimeout,
    MemoryLimitExceeded,
    NoRetry,
    PayloadTooLarge,
    Retry,
    SerializationError,
    UnknownTask,
    WaitForChildren,
)
from corral.flow import SpawnedChildren
from corral.options import parse_bytes
from corral.serialization import loads
from corral.worker import child as child_module
from corral.worker.child import RemoteError

if TYPE_CHECKING:
    from corral.backends.base import ClaimedJob
    from corral.context import JobContext
    from corral.options import TaskConfig
    from corral.task import Task

__all__ = ["IsolationSettings", "ProcessPool"]

log = logging.getLogger("corral.worker")

_PAGE = os.sysconf("SC_PAGE_SIZE")
_HAS_PROC = os.path.exists("/proc/self/statm")
#: Errors a child reports that keep their meaning in the worker (permanent, or signals).
_KNOWN: dict[str, type[Exception]] = {
    f"corral.errors.{kind.__name__}": kind
    for kind in (
        NoRetry,
        InvalidArguments,
        SerializationError,
        PayloadTooLarge,
        JobCancelled,
        UnknownTask,
    )
}
#: What a task raised in its child (the child itself is fine and is reused).
_TASK_ERRORS: tuple[type[Exception], ...] = (
    RemoteError,
    Retry,
    WaitForChildren,
    *_KNOWN.values(),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolationSettings:
    """A worker's settings for isolated tasks (``Worker(isolation=...)``).

    ``kill_grace``: seconds between SIGTERM and SIGKILL when a job runs past its
    timeout or is cancelled. ``sample_every``: seconds between two readings of a
    running child's resident memory. ``recycle_memory`` (bytes or ``"512MB"``): a child
    using more than this once its job ends is replaced. ``start_method``: multiprocessing's
    (``forkserver``, or ``spawn``; ``fork`` copies the worker's threads and locks).
    """

    kill_grace: float = 5.0
    sample_every: float = 0.05
    recycle_memory: int | str | None = None
    start_method: str = "forkserver"

    def __post_init__(self) -> None:
        if not self.kill_grace >= 0 or not self.sample_every > 0:
            raise ConfigurationError("kill_grace must be >= 0 and sample_every > 0")
        if self.recycle_memory is not None:
            try:
                parse_bytes("recycle_memory", self.recycle_memory)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
        if self.start_method not in multiprocessing.get_all_start_methods():
            raise ConfigurationError(f"start_method {self.start_method!r} is not available here")


def rss(pid: int) -> int:
    """Resident memory of a process in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class _Child:
    """One child process, its pipe and its lifeline (the worker's end, never written)."""

    def __init__(self, proc: BaseProcess, conn: Connection, lifeline: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self.lifeline = lifeline
        self.jobs = 0
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._reading = False

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def listen(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._reading:
            self._reading = True
            loop.add_reader(self.conn.fileno(), self._readable, loop)

    def _readable(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            frame: bytes | None = self.conn.recv_bytes()
        except (EOFError, OSError):
            frame = None
            self.unlisten(loop)
        self.inbox.put_nowait(frame)

    def unlisten(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._reading:
            self._reading = False
            with contextlib.suppress(Exception):
                loop.remove_reader(self.conn.fileno())

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def close(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if loop is not None:
            self.unlisten(loop)
        self.conn.close()
        self.lifeline.close()


def _death(proc: BaseProcess) -> str:
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class ProcessPool:
    """The child processes of one worker, started on demand and reused."""

    def __init__(self, settings: IsolationSettings | None = None) -> None:
        self.settings = settings or IsolationSettings()
        self._recycle = (
            None
            if self.settings.recycle_memory is None
            else parse_bytes("recycle_memory", self.settings.recycle_memory)
        )
        self._idle: list[_Child] = []
        self._all: set[_Child] = set()
        self._dying: set[_Child] = set()  # sent SIGTERM, SIGKILL still to come
        self._starting = asyncio.Lock()
        self.started = 0

    @property
    def children(self) -> int:
        """Child processes alive now (idle or running a job)."""
        return len(self._all)

    async def _start(self) -> _Child:
        async with self._starting:  # one at a time: a recycle never starts a herd
            mp = multiprocessing.get_context(self.settings.start_method)
            if self.settings.start_method == "forkserver" and not self.started:
                # Children then fork from a server that has imported corral already.
                mp.set_forkserver_preload(["corral.worker.child"])
            conn, child_conn = mp.Pipe()
            life_r, life_w = mp.Pipe(duplex=False)
            proc: BaseProcess = mp.Process(  # type: ignore[attr-defined]
                target=child_module.main, args=(child_conn, life_r), name="corral-child"
            )
            try:
                await asyncio.to_thread(proc.start)
            finally:
                child_conn.close()
                life_r.close()
            self.started += 1
        child = _Child(proc, conn, life_w)
        self._all.add(child)
        return child

    async def _checkout(self) -> _Child:
        while self._idle:
            child = self._idle.pop()
            if child.proc.is_alive():
                return child
            log.warning("an idle child process (pid %d) died: %s", child.pid, _death(child.proc))
            self._discard(child)
        return await self._start()

    def _discard(self, child: _Child, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._all.discard(child)
        child.close(loop)

    def _kill_later(self, child: _Child, loop: asyncio.AbstractEventLoop) -> None:
        """SIGTERM now (the task's ``finally`` blocks run), SIGKILL after the grace;
        its lifeline stays open till then (closing it makes the child exit at once)."""
        self._all.discard(child)
        self._dying.add(child)
        child.unlisten(loop)
        child.signal(signal.SIGTERM)

        def finish() -> None:
            if child in self._dying:
                self._dying.discard(child)
                self._reap(child)
                child.close()

        loop.call_later(self.settings.kill_grace, finish)

    async def _stop(self, child: _Child, grace: float) -> bool:
        """SIGTERM, wait up to ``grace``, then SIGKILL; True when SIGTERM sufficed."""
        child.signal(signal.SIGTERM)
        if await self._exited(child, grace):
            return True
        child.signal(signal.SIGKILL)
        await self._exited(child, 5.0)
        return False

    @staticmethod
    async def _exited(child: _Child, within: float) -> bool:
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while child.proc.is_alive():
            if loop.time() >= end:
                return False
            await asyncio.sleep(0.01)
        return True

    async def run(
        self, task: Task[Any, Any], config: TaskConfig, claimed: ClaimedJob, ctx: JobContext
    ) -> bytes:
        """Run one job in a child; its encoded result, or the error that ended it."""
        loop = asyncio.get_running_loop()
        if config.isolation and config.isolation.memory_limit and not _HAS_PROC:
            raise ConfigurationError(
                "memory_limit needs /proc to read a process's memory (Linux); this system has none"
            )
        child = await self._checkout()
        fn = task.fn
        header = {
            "id": claimed.id,
            "queue": claimed.queue,
            "name": claimed.name,
            "attempt": claimed.attempt,
            "stalls": claimed.stalls,
            "max_attempts": config.attempts,
            "module": fn.__module__,
            "qualname": fn.__qualname__,
            "context": task.wants_context,
            "max_result": task.app.max_result_bytes,
        }
        try:
            child.listen(loop)
            child.conn.send_bytes(b"J" + orjson.dumps(header))
            child.conn.send_bytes(claimed.data)
            result = await self._supervise(child, config, ctx, loop)
        except _TASK_ERRORS:
            child.unlisten(loop)
            self._checkin(child, config, loop)  # the task raised: the child is fine
            raise
        except (BrokenPipeError, ConnectionResetError) as exc:
            self._discard(child, loop)
            await self._exited(child, 1.0)
            raise ChildProcessDied(
                f"the process running the job died ({_death(child.proc)})", child.proc.exitcode
            ) from exc
        except asyncio.CancelledError:
            # Cancelled, lease lost or shutdown: the child must not run on.
            self._kill_later(child, loop)
            raise
        except BaseException:
            self._discard(child, loop)
            raise
        child.unlisten(loop)
        self._checkin(child, config, loop)
        return result

    def _checkin(self, child: _Child, config: TaskConfig, loop: asyncio.AbstractEventLoop) -> None:
        child.jobs += 1
        limit = config.isolation.max_tasks_per_child if config.isolation else None
        why = ""
        if limit is not None and child.jobs >= limit:
            why = f"after {child.jobs} jobs"
        elif self._recycle is not None and (size := rss(child.pid)) > self._recycle:
            why = f"using {size / 2**20:.0f} MiB (recycle_memory {self._recycle / 2**20:.0f} MiB)"
        if not why:
            self._idle.append(child)
            return
        log.info("replacing child process %d %s", child.pid, why)
        with contextlib.suppress(OSError):
            child.conn.send_bytes(b"X")
        self._discard(child, loop)
        loop.call_later(self.settings.kill_grace, self._reap, child)

    def close(self) -> None:
        """Kill every child left (at the worker's stop: running jobs were handed back)."""
        children = [*self._all, *self._dying]
        self._all, self._dying, self._idle = set(), set(), []
        for child in children:
            child.signal(signal.SIGKILL)
        for child in children:
            child.proc.join(2.0)
            child.close()

    @staticmethod
    def _reap(child: _Child) -> None:
        if child.proc.is_alive():
            child.signal(signal.SIGKILL)
        child.proc.join(1.0)

    async def _supervise(
        self, child: _Child, config: TaskConfig, ctx: JobContext, loop: asyncio.AbstractEventLoop
    ) -> bytes:
        timeout = config.timeout
        limit = config.isolation.memory_limit if config.isolation else None
        deadline = None if timeout is None else loop.time() + timeout
        every = self.settings.sample_every
        next_sample = loop.time() + every
        peak = 0
        while True:
            now = loop.time()
            if now >= next_sample:
                next_sample = now + every
                size = rss(child.pid)
                peak = max(peak, size)
                if size == 0 and not child.proc.is_alive():
                    raise ChildProcessDied(
                        f"the process running the job died ({_death(child.proc)})",
                        child.proc.exitcode,
                    )
                if limit is not None and size > limit:
                    child.signal(signal.SIGKILL)
                    await self._exited(child, 5.0)
                    raise MemoryLimitExceeded(
                        f"the job's process used {size / 2**20:.0f} MiB, over its "
                        f"memory_limit of {limit / 2**20:.0f} MiB, and was killed "
                        f"(peak {peak} bytes)",
                        peak,
                    )
            if deadline is not None and now >= deadline:
                assert timeout is not None
                grace = self.settings.kill_grace
                how = (
                    "stopped with SIGTERM"
                    if await self._stop(child, grace)
                    else f"killed with SIGKILL {grace:g} s after SIGTERM"
                )
                raise JobTimeout(
                    f"job ran longer than its timeout of {timeout:g} s; its process was {how}"
                )
            wait = next_sample - now if deadline is None else min(next_sample, deadline) - now
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel
                # (the job's) that arrives as a frame does, and the child would run on.
                async with asyncio.timeout(max(wait, 0.0)):
                    frame = await child.inbox.get()
            except TimeoutError:
                continue
            if frame is None:
                await self._exited(child, 1.0)
                raise ChildProcessDied(
                    f"the process running the job died ({_death(child.proc)})",
                    child.proc.exitcode,
                )
            kind, body = frame[:1], frame[1:]
            if kind == b"R":
                return body
            if kind == b"E":
                raise _rebuild(orjson.loads(body))
            if kind == b"W":  # parked by the worker, as for an in-process task
                spawn = orjson.loads(body)
                children = SpawnedChildren.decode(spawn["children"].encode())
                raise WaitForChildren(children, on_failure=spawn["on_failure"])
            child.conn.send_bytes(await _relay(ctx, kind, body))


async def _relay(ctx: JobContext, kind: bytes, body: bytes) -> bytes:
    """Do what the child asked through its context; the answer frame."""
    if kind == b"D":
        try:
            deps = await ctx.dependencies()
        except Exception as exc:
            return b"!" + f"{type(exc).__name__}: {exc}".encode()
        return b"D" + orjson.dumps(
            {n: {"state": d.state, "result": d.result, "error": d.error} for n, d in deps.items()}
        )
    try:
        if kind == b"P":
            return b"A1" if await ctx.progress(loads(body)) else b"A0"
        if kind == b"L":
            return b"A1" if await ctx.log(*orjson.loads(body)) else b"A0"
    except Exception as exc:  # the store is down, say: the job goes on, like in-process
        log.warning("could not store progress or logs of job %s: %s", ctx.id, exc)
    return b"A0"


def _rebuild(info: dict[str, Any]) -> Exception:
    """The exception the worker records for an ``E`` frame."""
    kind, message = str(info["type"]), str(info["message"])
    if kind == "corral.errors.Retry":
        return Retry(
            message, delay=info.get("delay"), count_attempt=info.get("count_attempt", True)
        )
    known = _KNOWN.get(kind)
    if known is not None:
        return known(message)
    return RemoteError(kind, message, info.get("traceback"))
