"""The child side of process isolation: what runs inside a worker's child process.

A child serves one job at a time over a duplex pipe, as frames whose first byte
says what they are (everything else is JSON, never pickle):

- worker → child: ``J`` + job header (JSON), then the job's stored arguments;
  ``A1``/``A0`` answers a progress or log frame (stored or not); ``X`` asks it to exit.
- child → worker: ``P`` + progress value, ``L`` + log lines (each waits for ``A``),
  ``D`` (a flow job's dependencies: answered ``D`` + JSON, or ``!`` + why), then ``R``
  + the encoded result, ``E`` + the error (type, message, traceback), or ``W`` + the
  children of a ``WaitForChildren`` the task raised (prepared here, where the tasks
  are: see :class:`~corral.flow.SpawnedChildren`), which the worker parks the job for.

A second, one-way pipe is the child's lifeline: the worker never writes to it, so
reading it ends (EOF) only when the worker process is gone, even SIGKILLed; the child
then exits instead of running on as an orphan. SIGTERM raises :class:`Stopped` in the
task so its ``finally`` blocks run; SIGINT is ignored (a Ctrl-C on the terminal reaches
the whole process group, and the worker decides what happens to its jobs).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import os
import signal
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

import orjson

from corral.context import Dependency, JobContext, _current
from corral.errors import CorralError, Retry, UnknownTask, ValidationError, WaitForChildren
from corral.flow import SpawnedChildren, prepare_children
from corral.serialization import decode, dumps, encode_result

__all__ = ["ChildContext", "RemoteError", "Stopped", "main"]


class Stopped(BaseException):
    """Raised in an isolated task when its worker sends SIGTERM (a timeout or a
    cancel): a BaseException, so ``except Exception`` in the task does not swallow it."""


class RemoteError(CorralError):
    """An exception a task raised in its child process, as recorded there: its type
    name (``module.Qualname``) and traceback are the child's."""

    def __init__(self, type_name: str, message: str, remote_traceback: str | None) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.remote_traceback = remote_traceback


class ChildContext(JobContext):
    """The :class:`~corral.context.JobContext` of a job running in a child process:
    progress and log lines go to the worker, which stores them with the job's lease."""

    def __init__(self, conn: Connection, job: dict[str, Any]) -> None:
        self.id = job["id"]
        self.queue = job["queue"]
        self.name = job["name"]
        self.attempt = job["attempt"]
        self.stalls = job["stalls"]
        self.max_attempts = job["max_attempts"]
        self.cancel_reason = None
        #: Not the worker's: startup hooks ran in the worker process, not here.
        self.worker_state = {}
        self._on_progress = None
        self._hooks_last = None
        self._conn = conn

    @property
    def redis(self) -> Any:
        raise CorralError("ctx.redis is not available in an isolated task (a child process)")

    def _ask(self, frame: bytes) -> bool:
        self._conn.send_bytes(frame)
        return self._conn.recv_bytes() == b"A1"

    async def progress(self, value: Any) -> bool:
        return self.progress_sync(value)

    async def log(self, *lines: str) -> bool:
        return self.log_sync(*lines)

    def progress_sync(self, value: Any) -> bool:
        return self._ask(b"P" + dumps(value, what="progress"))

    def log_sync(self, *lines: str) -> bool:
        return self._ask(b"L" + orjson.dumps([str(line) for line in lines]))

    async def dependencies(self) -> dict[str, Dependency]:
        return self.dependencies_sync()

    def dependencies_sync(self) -> dict[str, Dependency]:
        self._conn.send_bytes(b"D")
        reply = self._conn.recv_bytes()
        if reply[:1] != b"D":
            raise CorralError(f"could not read the job's dependencies: {reply[1:].decode()}")
        return {name: Dependency(**fields) for name, fields in orjson.loads(reply[1:]).items()}

    def dependency_results_sync(self) -> dict[str, Any]:
        return {n: d.result for n, d in self.dependencies_sync().items() if d.completed}


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def describe(exc: BaseException) -> bytes:
    """The ``E`` frame's body for an exception raised by a task."""
    info: dict[str, Any] = {
        "type": _type_name(exc),
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }
    if isinstance(exc, Retry):
        info["delay"] = exc.delay
        info["count_attempt"] = exc.count_attempt
    return orjson.dumps(info)


_functions: dict[tuple[str, str], Callable[..., Any]] = {}


def resolve(module: str, qualname: str) -> Callable[..., Any]:
    """The task's function, imported by module path (a registered Task gives its fn)."""
    key = (module, qualname)
    fn = _functions.get(key)
    if fn is None:
        try:
            obj: Any = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise UnknownTask(
                f"the child process cannot import {module}.{qualname} ({exc}); an isolated "
                "task must be a module-level function of a module importable by its path"
            ) from None
        fn = _functions[key] = getattr(obj, "fn", obj)
    return fn


def _run(conn: Connection, header: bytes, data: bytes) -> None:
    job = orjson.loads(header)
    ctx = ChildContext(conn, job)
    token = _current.set(ctx)
    try:
        fn = resolve(job["module"], job["qualname"])
        args, kwargs = decode(data)
        if job["context"]:
            args = [ctx, *args]
        value = fn(*args, **kwargs)
        if inspect.iscoroutine(value):  # an async task: its own loop, for this job
            value = asyncio.run(value)
        frame = b"R" + encode_result(value, job["name"], job["max_result"])
    except Stopped:
        raise
    except WaitForChildren as signal:
        frame = b"W" + _spawn(ctx, signal)
    except BaseException as exc:  # everything the task raised goes back as its error
        frame = b"E" + describe(exc)
    finally:
        _current.reset(token)
    conn.send_bytes(frame)


def _spawn(ctx: ChildContext, signal: WaitForChildren) -> bytes:
    """The ``W`` frame's body: the children prepared as the worker's park would (ids
    ``<job id>.s<outcomes held>.<n>``, names not taken), or why they are not valid."""
    try:
        taken = ctx.dependencies_sync()
        spawn_id = f"{ctx.id}.s{len(taken)}"
        spawned = SpawnedChildren(
            spawn_id, tuple(prepare_children(signal.children, spawn_id, taken))
        )
    except ValidationError as exc:
        spawned = SpawnedChildren("", invalid=(type(exc).__name__, str(exc)))
    return orjson.dumps({"on_failure": signal.on_failure, "children": spawned.encode().decode()})


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise Stopped("stopped by the worker (SIGTERM)")


def _watch(lifeline: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(70)  # the worker is gone: nobody will read this job's outcome


def main(conn: Connection, lifeline: Connection) -> None:
    """Serve jobs until told to exit, the worker goes away, or SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)
    threading.Thread(target=_watch, args=(lifeline,), name="corral-lifeline", daemon=True).start()
    try:
        while True:
            try:
                frame = conn.recv_bytes()
            except (EOFError, OSError):
                return
            if frame[:1] != b"J":
                return
            _run(conn, frame[1:], conn.recv_bytes())
    except Stopped:
        return
