"""The job handle: read a job's state and act on it."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from corral._sync import run_sync
from corral.backends.base import JobRecord, JobState
from corral.backends.flow_records import spawn_parent
from corral.backends.wire import raw_text
from corral.blockers import Blocker, blockers
from corral.errors import CorralError, JobCancelled, JobFailed, JobNotFound, ResultTimeout
from corral.settings import describe_backend
from corral.stored import StoredFields, read_fields

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["Job"]

#: Seconds the re-read after a wait may take beyond ``timeout`` (its final answer).
_REREAD = 1.0
_READ_BATCH = 500  # children read at once (per queue)


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


class Job:
    """A job in a queue. Fields are as of the last :meth:`refresh` (or the call
    that returned the handle); actions go straight to the backend."""

    def __init__(self, app: Corral, queue: str, job_id: str, record: JobRecord | None = None):
        self._app = app
        self.queue = queue
        self.id = job_id
        self._record = record
        self._fields: tuple[JobRecord, StoredFields] | None = None
        #: Set by enqueue: False when the job id already existed (idempotent add).
        self.created: bool | None = None

    def __repr__(self) -> str:
        state = self._record.state.value if self._record else "?"
        return f"<Job {self.id} queue={self.queue} state={state}>"

    def _rec(self) -> JobRecord:
        if self._record is None:
            raise JobNotFound(
                f"job {self.id!r} has not been read yet: call refresh() (or refresh_sync())"
            )
        return self._record

    def _decoded(self) -> StoredFields:
        record = self._rec()
        if self._fields is None or self._fields[0] is not record:
            self._fields = (record, read_fields(record))
        return self._fields[1]

    # -- fields ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The task name."""
        return self._rec().name

    @property
    def state(self) -> JobState:
        return self._rec().state

    @property
    def args(self) -> list[Any]:
        return self._decoded().args

    @property
    def kwargs(self) -> dict[str, Any]:
        return self._decoded().kwargs

    @property
    def corrupt(self) -> dict[str, str]:
        """Stored fields that could not be decoded (``args``, ``progress``, ``result``,
        ``errors``) -> their raw text; such a field reads as empty. Usually ``{}``."""
        return self._decoded().corrupt

    @property
    def priority(self) -> int:
        return self._rec().priority

    @property
    def group(self) -> str | None:
        """The group (tenant) the job belongs to, if any."""
        return self._rec().group

    @property
    def progress(self) -> Any:
        """The last progress the task reported (any JSON value), or None."""
        return self._decoded().progress

    @property
    def return_value(self) -> Any:
        """The task's result once completed, else None (see :meth:`result` to wait)."""
        return self._decoded().result

    @property
    def errors(self) -> list[dict[str, Any]]:
        """One record per failed attempt: type, message, traceback, attempt, at."""
        return self._decoded().errors

    @property
    def error(self) -> dict[str, Any] | None:
        """The last error recorded, or None."""
        errors = self._decoded().errors
        return errors[-1] if errors else None

    @property
    def logs(self) -> list[str]:
        return [raw_text(line) for line in self._rec().logs]

    @property
    def attempts(self) -> int:
        """Attempts made so far (including a running one)."""
        return self._rec().attempts

    @property
    def stalls(self) -> int:
        """How often the job's lease expired (its worker died or was blocked)."""
        return self._rec().stalls

    @property
    def created_at(self) -> datetime | None:
        return _dt(self._rec().created_at)

    @property
    def worker(self) -> str | None:
        """The id (``host:pid:tag``) of the worker that took the latest attempt, or
        None before the first. Each error record names the worker of its attempt."""
        return self._rec().worker

    @property
    def started_at(self) -> datetime | None:
        """When the latest attempt started."""
        return _dt(self._rec().started_at)

    @property
    def finished_at(self) -> datetime | None:
        return _dt(self._rec().finished_at)

    @property
    def run_at(self) -> datetime | None:
        """When a delayed job becomes due."""
        return _dt(self._rec().run_at)

    @property
    def dedupe_key(self) -> str | None:
        """The dedupe key the job was added with, if any."""
        return self._rec().dedupe_key

    @property
    def options(self) -> dict[str, Any]:
        """The per-job overrides stored with the job (``attempts``, ``timeout``,
        ``backoff``; ``rerun_of`` for a job made by :meth:`run_again`); ``{}`` when it
        has none (the task's defaults apply) or they cannot be read."""
        raw = self._rec().options
        try:
            data = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def flow_id(self) -> str | None:
        """The id of the flow this job belongs to, if any."""
        return self._rec().flow

    @property
    def rerun_of(self) -> str | None:
        """The id of the job this one was made from by :meth:`run_again`, if any."""
        origin = self.options.get("rerun_of")
        return origin if isinstance(origin, str) else None

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-friendly values (timestamps in ISO 8601)."""
        rec = self._rec()

        def iso(ms: int | None) -> str | None:
            dt = _dt(ms)
            return None if dt is None else dt.isoformat()

        return {
            "id": self.id,
            "queue": self.queue,
            "name": rec.name,
            "state": rec.state.value,
            "args": self.args,
            "kwargs": self.kwargs,
            "priority": rec.priority,
            "group": rec.group,
            "worker": rec.worker,
            "attempts": rec.attempts,
            "stalls": rec.stalls,
            "progress": self.progress,
            "result": self.return_value,
            "errors": self.errors,
            "logs": self.logs,
            "created_at": iso(rec.created_at),
            "started_at": iso(rec.started_at),
            "finished_at": iso(rec.finished_at),
            "run_at": iso(rec.run_at),
            "cancel_requested": rec.cancel_requested,
            "corrupt": self.corrupt,
        }

    # -- reads and waits ------------------------------------------------------------

    async def refresh(self) -> Job:
        """Re-read the job; raises JobNotFound if it was removed."""
        backend = await self._app.backend()
        record = await backend.get(self.queue, self.id)
        if record is None:
            raise JobNotFound(f"no job {self.id!r} in queue {self.queue!r}")
        self._record = record
        return self

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the job to finish and return its result.

        Woken by the completion itself (no polling). Raises JobFailed (with the last
        error) if it failed for good, JobCancelled if cancelled, ResultTimeout when
        ``timeout`` seconds pass first (the job keeps going; the message says when no
        live worker serves the job's queue, and which store was asked).
        """
        state = await self.wait(timeout)
        if state is None:
            message = f"job {self.id} did not finish within {timeout} s"
            if await self._no_live_worker():
                message += (
                    f"; no live worker serves queue {self.queue!r}"
                    f" (backend {describe_backend(self._app.url)})"
                )
            raise ResultTimeout(message)
        if state is JobState.COMPLETED:
            return self.return_value
        if state is JobState.FAILED:
            raise JobFailed(self.id, self.error)
        raise JobCancelled(f"job {self.id} was cancelled")

    async def _no_live_worker(self) -> bool:
        """True when no live worker serves this job's queue; False when that cannot be
        told within :data:`_REREAD` seconds (a stalled store must not stretch the
        timeout of the wait that asks)."""
        try:
            async with asyncio.timeout(_REREAD / 2):
                return not await self._app.queue(self.queue).workers()
        except (TimeoutError, CorralError):
            return False

    async def wait(self, timeout: float | None = None) -> JobState | None:
        """Wait until the job finishes (any way) and refresh it; returns the final
        state, or None when ``timeout`` seconds passed first. Never raises for a
        failed job (see :meth:`result` for that). The bound holds whatever the
        connection does (up to a second more for the final re-read); trouble the
        store reports before it raises ConnectionFailed or BackendError."""
        backend = await self._app.backend()
        limit = min(math.inf if timeout is None else timeout, 10**9)
        state = await backend.wait_finished(self.queue, self.id, limit)
        # The re-read is bounded too, so the wait keeps its promise whatever the
        # connection does; an outcome that cannot be read in time counts as not known.
        try:
            async with asyncio.timeout(None if timeout is None else _REREAD):
                await self.refresh()
        except TimeoutError:
            return None
        return state

    async def children(self) -> dict[str, Job]:
        """The jobs this job spawned (``WaitForChildren``), every wait's, by the name
        ``ctx.dependency_results()`` gives them, in the order spawned, each read now
        (children removed since are left out). Empty for a job that spawned none. The
        children of one wait may depend on one another (a chain...), but they have no
        flow record: this is their listing."""
        backend = await self._app.backend()
        edges = await backend.spawned(self.queue, self.id)
        by_queue: dict[str, list[str]] = {}
        for queue, job_id, _ in edges:
            by_queue.setdefault(queue, []).append(job_id)
        batches = [
            (queue, ids[i : i + _READ_BATCH])
            for queue, ids in by_queue.items()
            for i in range(0, len(ids), _READ_BATCH)
        ]
        read = await asyncio.gather(*(backend.get_many(q, ids) for q, ids in batches))
        found = {
            (queue, record.id): record
            for (queue, _), records in zip(batches, read, strict=True)
            for record in records
            if record is not None
        }
        return {
            name: Job(self._app, queue, job_id, found[(queue, job_id)])
            for queue, job_id, name in edges
            if (queue, job_id) in found
        }

    def children_sync(self) -> dict[str, Job]:
        """Blocking twin of :meth:`children`."""
        return run_sync(self.children())

    async def child_edges(self) -> list[dict[str, Any]]:
        """How the jobs this job spawned depend on one another (a ``chain``, a
        ``chord``...), as :meth:`FlowRun.to_dict` gives a flow's edges: ``{"from",
        "to", "on_failure", "pass_result"}`` between the names :meth:`children` gives
        them, ordered by dependent then dependency as spawned. Empty when none waits for
        another (plain calls, a group) or it spawned none."""
        backend = await self._app.backend()
        spawned = await backend.spawned(self.queue, self.id)
        order = {(queue, job_id): i for i, (queue, job_id, _) in enumerate(spawned)}
        by_queue: dict[str, list[str]] = {}
        for queue, job_id, _ in spawned:
            by_queue.setdefault(queue, []).append(job_id)
        read = await asyncio.gather(
            *(
                backend.dependents(queue, ids[i : i + _READ_BATCH])
                for queue, ids in by_queue.items()
                for i in range(0, len(ids), _READ_BATCH)
            )
        )
        found = []
        for edges in read:
            for dq, di, edge in edges:
                to, source = order.get((dq, di)), order.get((edge.queue, edge.job_id))
                if to is not None and source is not None:  # not the edge to this job
                    found.append((to, source, edge))
        return [
            {
                "from": spawned[source][2],
                "to": spawned[to][2],
                "on_failure": edge.on_failure.value,
                "pass_result": edge.pass_result,
            }
            for to, source, edge in sorted(found, key=lambda f: (f[0], f[1]))
        ]

    def child_edges_sync(self) -> list[dict[str, Any]]:
        """Blocking twin of :meth:`child_edges`."""
        return run_sync(self.child_edges())

    async def parent(self) -> Job | None:
        """The job that spawned this one (``WaitForChildren``), read now; None when
        this job was not spawned, or its parent has been removed. The relation is the
        parent's edge to it (the parent waits for each child), so nothing more is
        stored for it."""
        parent_id = spawn_parent(self.id)
        if parent_id is None:
            return None
        backend = await self._app.backend()
        for queue, job_id, _ in await backend.dependents(self.queue, [self.id]):
            if job_id == parent_id:
                record = await backend.get(queue, job_id)
                return None if record is None else Job(self._app, queue, job_id, record)
        return None

    def parent_sync(self) -> Job | None:
        """Blocking twin of :meth:`parent`."""
        return run_sync(self.parent())

    async def blockers(self) -> list[Blocker]:
        """Why the job has not started yet, most fundamental first (delayed, queue
        paused, no live worker, concurrency or group cap, rate limit, jobs ahead of it
        in line), read now in one atomic step; empty for a running or finished job.
        Raises JobNotFound if the job is gone. See :mod:`corral.blockers`."""
        backend = await self._app.backend()
        facts = await backend.wait_facts(self.queue, self.id)
        if facts is None:
            raise JobNotFound(f"no job {self.id!r} in queue {self.queue!r}")
        return blockers(facts)

    # -- actions --------------------------------------------------------------------

    async def cancel(self) -> JobState:
        """Cancel: waiting/delayed jobs end ``cancelled`` now; a running job is asked
        to stop (returns ``active``) and ends ``cancelled`` when it does."""
        backend = await self._app.backend()
        name = self._record.name if self._record else None
        return await backend.cancel(self.queue, self.id, self._app.cancelled_retention(name))

    async def retry(self) -> bool:
        """Run a failed or cancelled job again with fresh attempts. A job of a flow
        takes along its dependents that ended failed or cancelled because of it: they
        wait ``blocked`` for it again (as ``FlowRun.retry_failed`` does for that part
        of the flow); completed jobs are never run again."""
        backend = await self._app.backend()
        record = await backend.get(self.queue, self.id)
        if record is not None and record.flow and record.state.terminal:
            try:
                if await backend.retry_flow(record.flow, [(self.queue, self.id)]):
                    return True
            except JobNotFound:
                pass  # no flow record (a spawned child, or pruned): the job alone
        # Not through its flow (a dependency of its own failed it): the job alone.
        return (await backend.retry(self.queue, [self.id]))[0]

    async def promote(self) -> bool:
        """Make a delayed job run now."""
        backend = await self._app.backend()
        return await backend.promote(self.queue, self.id)

    async def remove(self) -> bool:
        """Delete the job (not while it is active: cancel it first)."""
        backend = await self._app.backend()
        return await backend.remove(self.queue, self.id)

    async def run_again(
        self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None
    ) -> Job:
        """Enqueue a new job of the same task, queue, priority, group and stored
        overrides, with these arguments (default: this job's); the new job's
        :attr:`rerun_of` names this one. Arguments are checked like any enqueue
        (InvalidArguments, SerializationError, PayloadTooLarge)."""
        rec = self._rec()
        task = self._app._task_for(rec.name, self.queue).options(
            priority=rec.priority, group=rec.group or None
        )
        queue, new = task.prepare(
            tuple(self.args if args is None else args),
            dict(self.kwargs if kwargs is None else kwargs),
        )
        # Not this job's trace context: the new job belongs to the trace enqueuing it.
        stored = {k: v for k, v in self.options.items() if k != "trace"}
        stored["rerun_of"] = self.id
        return (await self._app.submit(queue, [replace(new, options=orjson.dumps(stored))]))[0]

    # -- blocking twins -------------------------------------------------------------

    def refresh_sync(self) -> Job:
        """Blocking twin of :meth:`refresh`."""
        return run_sync(self.refresh())

    def result_sync(self, timeout: float | None = None) -> Any:
        """Blocking twin of :meth:`result`."""
        return run_sync(self.result(timeout))

    def blockers_sync(self) -> list[Blocker]:
        """Blocking twin of :meth:`blockers`."""
        return run_sync(self.blockers())

    def cancel_sync(self) -> JobState:
        """Blocking twin of :meth:`cancel`."""
        return run_sync(self.cancel())

    def retry_sync(self) -> bool:
        """Blocking twin of :meth:`retry`."""
        return run_sync(self.retry())

    def promote_sync(self) -> bool:
        """Blocking twin of :meth:`promote`."""
        return run_sync(self.promote())

    def remove_sync(self) -> bool:
        """Blocking twin of :meth:`remove`."""
        return run_sync(self.remove())

    def run_again_sync(
        self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None
    ) -> Job:
        """Blocking twin of :meth:`run_again`."""
        return run_sync(self.run_again(args, kwargs))
