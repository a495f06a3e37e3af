"""Run a real worker in the test until its queues are idle, re-raising a failure."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from corral._sync import run_sync
from corral.backends.base import Backend, JobRecord, JobState
from corral.errors import ConfigurationError, CorralError
from corral.hooks import JobEvent, Lifecycle
from corral.worker.worker import Worker

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["IdleResult", "IdleTimeout", "JobError", "run_until_idle", "run_until_idle_sync"]

#: How often the store is read while waiting for the queues to go idle.
_POLL = 0.02
#: Delayed jobs read per queue and poll (a test's queues hold far fewer).
_DELAYED_PAGE = 1000
#: Jobs named per queue in an IdleTimeout message.
_NAMED = 10
_UNFINISHED = (JobState.WAITING, JobState.ACTIVE, JobState.DELAYED)


class JobError(CorralError):
    """A job failed in :func:`run_until_idle` and its exception could not be rebuilt
    (its type is not importable here, or takes other arguments than a message). The
    message carries the stored error and traceback; ``error`` is the stored record."""

    def __init__(self, message: str, *, job_id: str, queue: str, task: str, error: dict[str, Any]):
        super().__init__(message)
        self.job_id = job_id
        self.queue = queue
        self.task = task
        self.error = error


class IdleTimeout(CorralError, TimeoutError):
    """:func:`run_until_idle` ran out of time; the message names the jobs still pending
    (``pending`` holds them as ``(queue, job id, task, state)``)."""

    def __init__(self, message: str, pending: list[tuple[str, str, str, str]]) -> None:
        super().__init__(message)
        self.pending = pending


@dataclass(frozen=True, slots=True)
class IdleResult:
    """What :func:`run_until_idle` did: jobs completed and failed for good."""

    completed: int
    failed: int


class _Failures(Lifecycle):
    """Hears the jobs that fail for good while the worker runs."""

    name = "corral.testing"

    def __init__(self) -> None:
        self.events: list[JobEvent] = []

    async def failed(self, event: JobEvent) -> None:
        self.events.append(event)


async def run_until_idle(
    app: Corral,
    queues: Sequence[str] | None = None,
    *,
    timeout: float = 10.0,
    raise_errors: bool = True,
    run_delayed: bool = False,
    skip_backoff: bool = True,
    concurrency: int | None = None,
) -> IdleResult:
    """Run a real :class:`~corral.worker.Worker` of ``app`` in this event loop until
    ``queues`` are idle: nothing waiting, active, or delayed and due; then stop it.

    ``queues`` default to the queues of the app's tasks and every queue the store
    knows. A job that fails for good stops the run and its exception is raised here
    (``raise_errors``): an exception of the task's own type with the worker's
    traceback in a note when that type is importable and takes a message, else
    :class:`JobError` carrying the stored traceback. Retries are part of the work:
    with ``skip_backoff`` (the default) a job waiting out its backoff runs at once,
    else the run waits for it. Jobs delayed into the future (``delay=``, debounce)
    are left alone, or run at once with ``run_delayed``. Raises :class:`IdleTimeout`
    naming the pending jobs after ``timeout`` seconds (the worker is stopped, running
    jobs handed back). Returns the jobs completed and failed.
    """
    __tracebackhide__ = True  # pytest shows the test's line and the exception's note
    if timeout <= 0:
        raise ConfigurationError(f"timeout must be > 0 seconds, got {timeout!r}")
    backend = await app.backend()
    names = list(queues) if queues else await _default_queues(app, backend)
    failures = _Failures()
    app.add_listener(failures)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    completed = failed = 0
    try:
        while True:
            worker = Worker(app, names, concurrency=concurrency, grace=1.0, block=0.5)
            running = asyncio.create_task(worker.run(), name="corral-testing-worker")
            try:
                pending = await _wait_idle(
                    backend, worker.queues, deadline, failures, running, skip_backoff, run_delayed
                )
            finally:
                # At once: idle, nothing runs; else (a failure, the timeout) running
                # jobs are cancelled and handed back.
                worker.stop(graceful=False)
                if pending_error := await _stopped(running):
                    raise pending_error
                completed += worker.processed
                failed += worker.failed
            if raise_errors and failures.events:
                raise _rebuild(failures.events)
            if pending:
                raise IdleTimeout(_describe(pending, timeout), pending_ids(pending))
            # The worker is stopped: nothing moves now, so this read is the answer
            # (a listener may have enqueued on the way out: then run again).
            pending = await _pending(backend, worker.queues, skip_backoff, run_delayed)
            if not pending:
                return IdleResult(completed, failed)
            if loop.time() >= deadline:
                raise IdleTimeout(_describe(pending, timeout), pending_ids(pending))
    finally:
        app.remove_listener(failures)


def run_until_idle_sync(
    app: Corral,
    queues: Sequence[str] | None = None,
    *,
    timeout: float = 10.0,
    raise_errors: bool = True,
    run_delayed: bool = False,
    skip_backoff: bool = True,
    concurrency: int | None = None,
) -> IdleResult:
    """Blocking twin of :func:`run_until_idle` (the worker runs on Corral's background
    event loop, the one the ``*_sync`` calls use)."""
    __tracebackhide__ = True
    return run_sync(
        run_until_idle(
            app,
            queues,
            timeout=timeout,
            raise_errors=raise_errors,
            run_delayed=run_delayed,
            skip_backoff=skip_backoff,
            concurrency=concurrency,
        )
    )


async def _default_queues(app: Corral, backend: Backend) -> list[str]:
    names = [task.queue for task in app.tasks.values()] or [app.default_queue]
    return list(dict.fromkeys([*names, *await backend.queues()]))


async def _stopped(running: asyncio.Task[None]) -> BaseException | None:
    """Wait for the worker to stop; the error it stopped with, if any."""
    try:
        await asyncio.wait_for(asyncio.shield(running), 10.0)
    except TimeoutError:
        running.cancel()
        with contextlib.suppress(BaseException):
            await running
        return CorralError("run_until_idle: the worker did not stop within 10 s")
    except Exception as exc:
        return exc
    return None


async def _wait_idle(
    backend: Backend,
    queues: Sequence[str],
    deadline: float,
    failures: _Failures,
    running: asyncio.Task[None],
    skip_backoff: bool,
    run_delayed: bool,
) -> list[JobRecord]:
    """Poll until idle twice in a row ([]), a failure or the worker's end ([]), or the
    deadline (the records still pending)."""
    loop = asyncio.get_running_loop()
    idle_reads = 0
    while True:
        pending = await _pending(backend, queues, skip_backoff, run_delayed)
        idle_reads = 0 if pending else idle_reads + 1
        if idle_reads >= 2 or failures.events or running.done():
            return []
        if pending and loop.time() >= deadline:
            return pending
        await asyncio.sleep(_POLL)


async def _pending(
    backend: Backend, queues: Sequence[str], skip_backoff: bool, run_delayed: bool
) -> list[JobRecord]:
    """The jobs of ``queues`` the run still waits for (waiting, active, delayed and
    due, or a retry), promoting retries (``skip_backoff``) and future delayed jobs
    (``run_delayed``) on the way."""
    pending: list[JobRecord] = []
    now: int | None = None
    for queue in queues:
        counts = await backend.counts(queue)  # one snapshot: all zero is idle for sure
        if not any(counts.get(s.value, 0) for s in _UNFINISHED):
            continue
        # Else read the lists in the order a job moves through them, so that one
        # claimed (or failed) between two reads is still seen in the next.
        for state in (JobState.WAITING, JobState.ACTIVE):
            pending += await backend.list_jobs(queue, state, 0, _NAMED)
        if now is None:
            now = await backend.time_ms()
        for record in await backend.list_jobs(queue, JobState.DELAYED, 0, _DELAYED_PAGE):
            # A job that has run before and is delayed again waits out a retry backoff.
            retry = bool(record.errors) or record.started_at is not None
            if (retry and skip_backoff) or (run_delayed and not retry):
                await backend.promote(queue, record.id)
                pending.append(record)
            elif retry or (record.run_at is not None and record.run_at <= now):
                pending.append(record)
    # A job read twice on its way (waiting, then active) is named once, as last seen.
    return list({(r.queue, r.id): r for r in pending}.values())


def pending_ids(pending: list[JobRecord]) -> list[tuple[str, str, str, str]]:
    return [(r.queue, r.id, r.name, r.state.value) for r in pending]


def _describe(pending: list[JobRecord], timeout: float) -> str:
    by_queue: dict[str, list[JobRecord]] = {}
    for record in pending:
        by_queue.setdefault(record.queue, []).append(record)
    lines = [f"run_until_idle: the queues were not idle after {timeout:g} s; still pending:"]
    for queue, records in by_queue.items():
        for record in records[:_NAMED]:
            detail = f"attempt {record.attempts}" if record.attempts else "not started"
            if record.state is JobState.DELAYED:
                detail += ", waiting out a retry backoff" if record.errors else ", delayed"
            lines.append(
                f"  {queue}: job {record.id} ({record.name}) {record.state.value}, {detail}"
            )
    if any(r.state is JobState.WAITING for r in pending):
        lines.append("  (waiting jobs: is their queue paused, over a limit, or not served?)")
    return "\n".join(lines)


def _rebuild(events: list[JobEvent]) -> BaseException:
    """The first failure as an exception of its own type where possible."""
    event = events[0]
    error = event.error or {}
    kind = str(error.get("type") or "")
    message = str(error.get("message") or "")
    trace = error.get("traceback") or ""
    where = f"job {event.job_id} ({event.task}) in queue {event.queue!r}, attempt {event.attempt}"
    others = [f"job {e.job_id} ({e.task}): {e.error_message}" for e in events[1:]]
    note = f"raised by {where}"
    if trace:
        note += f"; the worker's traceback:\n{trace.rstrip()}"
    if others:
        note += "\nalso failed: " + "; ".join(others)
    exc = _instance(kind, message)
    if exc is None:
        text = f"{where} failed: {kind}: {message}"
        if trace:
            text += f"\n\nthe worker's traceback:\n{trace.rstrip()}"
        if others:
            text += "\nalso failed: " + "; ".join(others)
        return JobError(text, job_id=event.job_id, queue=event.queue, task=event.task, error=error)
    exc.add_note(note)
    return exc


def _instance(kind: str, message: str) -> BaseException | None:
    """``kind(message)`` for a stored type name (``module.Qualname``, builtins bare)
    whose module is already imported; None when that cannot be built. Never imports:
    the worker ran here, so the module of any exception it raised is loaded."""
    parts = kind.split(".")
    found: Any = None
    if len(parts) == 1:
        found = getattr(builtins, kind, None)
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        found = module
        for attr in parts[cut:]:
            found = getattr(found, attr, None)
        break
    if not (isinstance(found, type) and issubclass(found, Exception)):
        return None
    try:
        exc = found(message)
    except Exception:
        return None
    return exc if isinstance(exc, Exception) else None
