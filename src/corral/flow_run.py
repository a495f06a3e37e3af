"""A started flow: its jobs and edges, state, progress, waiting and cancelling.

State, read from the jobs: ``running`` while any job is unfinished; once all have
ended, ``completed`` when every job nothing depends on (a sink) completed, else
``failed`` when a job failed, else ``cancelled``.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from corral._sync import run_sync
from corral.backends.base import Backend, FlowRecord, JobBrief, JobState
from corral.errors import InvalidTransition, JobNotFound, ValidationError
from corral.job import Job

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["FlowPage", "FlowRun", "flow_cursor", "parse_flow_cursor"]

T = TypeVar("T")

#: Jobs read per backend call when a flow is refreshed (one pipeline / transaction each).
_READ_BATCH = 500


class FlowRun:
    """A handle on a stored flow; fields are as of the last :meth:`refresh`."""

    def __init__(self, app: Corral, record: FlowRecord) -> None:
        self._app = app
        self.id = record.id
        self.record = record
        #: The flow's jobs by their name in the flow (None once a job was removed).
        self.jobs: dict[str, Job | None] = {
            name: Job(app, queue, job_id) for queue, job_id, name in record.jobs
        }
        #: Set by ``start_flow``: False when a flow with this id was stored already.
        self.created: bool | None = None
        # Set by refresh_briefs (the jobs' records are then not read), None otherwise.
        self._briefs: dict[str, JobBrief | None] | None = None

    def __repr__(self) -> str:
        return f"<FlowRun {self.id} {len(self.jobs)} jobs>"

    async def refresh(self) -> FlowRun:
        """Re-read every job of the flow."""
        found = await self._read(lambda backend, queue, ids: backend.get_many(queue, ids))
        self._briefs = None
        for queue, job_id, name in self.record.jobs:
            record = found[(queue, job_id)]
            self.jobs[name] = None if record is None else Job(self._app, queue, job_id, record)
        return self

    async def refresh_briefs(self) -> FlowRun:
        """Re-read each job's state, task name and attempts only, as a listing of
        flows shows them (their arguments, results, errors and logs are not read)."""
        found = await self._read(lambda backend, queue, ids: backend.job_briefs(queue, ids))
        self._briefs = {name: found[(queue, job_id)] for queue, job_id, name in self.record.jobs}
        for queue, job_id, name in self.record.jobs:
            brief = self._briefs[name]
            self.jobs[name] = None if brief is None else Job(self._app, queue, job_id)
        return self

    async def _read(
        self, read: Callable[[Backend, str, list[str]], Awaitable[Sequence[T | None]]]
    ) -> dict[tuple[str, str], T | None]:
        """``read`` for every job of the flow, in batches per queue, all at once."""
        backend = await self._app.backend()
        by_queue: dict[str, list[str]] = {}
        for queue, job_id, _ in self.record.jobs:
            by_queue.setdefault(queue, []).append(job_id)
        batches = [
            (queue, ids[i : i + _READ_BATCH])
            for queue, ids in by_queue.items()
            for i in range(0, len(ids), _READ_BATCH)
        ]
        read_all = await asyncio.gather(*(read(backend, q, ids) for q, ids in batches))
        return {
            (queue, job_id): value
            for (queue, ids), values in zip(batches, read_all, strict=True)
            for job_id, value in zip(ids, values, strict=True)
        }

    def refresh_sync(self) -> FlowRun:
        """Blocking twin of :meth:`refresh`."""
        return run_sync(self.refresh())

    def _states(self) -> dict[str, JobState | None]:
        if self._briefs is not None:
            return {name: None if b is None else b.state for name, b in self._briefs.items()}
        out: dict[str, JobState | None] = {}
        for name, job in self.jobs.items():
            record = None if job is None else job._record
            out[name] = None if record is None else record.state
        return out

    @property
    def progress(self) -> tuple[int, int]:
        """(jobs ended, jobs in the flow); a removed job counts as ended."""
        states = self._states()
        done = sum(1 for s in states.values() if s is None or s.terminal)
        return done, len(states)

    @property
    def state(self) -> str:
        """``running``, ``completed``, ``failed`` or ``cancelled`` (module docstring)."""
        states = self._states()
        if any(s is not None and not s.terminal for s in states.values()):
            return "running"
        needed = {edge.name for _, _, edge in self.record.edges}
        sinks = [states[name] for name in states if name not in needed]
        if all(s is JobState.COMPLETED for s in sinks):
            return "completed"
        if any(s is JobState.FAILED for s in states.values()):
            return "failed"
        return "cancelled"

    async def wait(self, timeout: float | None = None) -> str:
        """Wait until every job of the flow has ended (or ``timeout`` seconds passed);
        returns :attr:`state` (``running`` on a timeout)."""
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        await self.refresh()
        for job in list(self.jobs.values()):
            if job is None or (job._record is not None and job._record.state.terminal):
                continue
            left = deadline - time.monotonic()
            try:
                if left <= 0 or await job.wait(None if left == math.inf else left) is None:
                    break
            except JobNotFound:
                continue  # removed meanwhile (retention): it has ended
        return (await self.refresh()).state

    def wait_sync(self, timeout: float | None = None) -> str:
        """Blocking twin of :meth:`wait`."""
        return run_sync(self.wait(timeout))

    def results(self) -> dict[str, Any]:
        """The results of the jobs that completed, by name (as of the last refresh)."""
        out = {}
        for name, job in self.jobs.items():
            record = None if job is None else job._record
            if job is not None and record is not None and record.state is JobState.COMPLETED:
                out[name] = job.return_value
        return out

    async def cancel(self) -> int:
        """Cancel every unfinished job of the flow: waiting and blocked ones end
        ``cancelled`` now, running ones are asked to stop. Dependents go first, so
        they end cancelled rather than failed by their dependency's cancellation.
        Returns how many jobs were cancelled or asked to stop."""
        await self.refresh()
        backend = await self._app.backend()
        order = _dependents_first(self.record)
        count = 0
        for name in order:
            job = self.jobs.get(name)
            if job is None or job._record is None or job._record.state.terminal:
                continue
            try:
                await job.cancel()
                count += 1
            except (InvalidTransition, JobNotFound):
                pass  # it ended meanwhile
        for queue in sorted({q for q, _, _ in self.record.jobs}):
            await backend.pass_handoffs(queue)
        await self.refresh()
        return count

    def cancel_sync(self) -> int:
        """Blocking twin of :meth:`cancel`."""
        return run_sync(self.cancel())

    async def retry_failed(self) -> int:
        """Run the flow's failed and cancelled jobs again (fresh attempts), after
        the jobs they depend on that are retried with them; completed jobs are not
        run again (their results still reach the retried jobs). Returns how many jobs
        were put back. Raises InvalidTransition while the flow is running."""
        backend = await self._app.backend()
        count = await backend.retry_flow(self.id)
        await self.refresh()
        return count

    def retry_failed_sync(self) -> int:
        """Blocking twin of :meth:`retry_failed`."""
        return run_sync(self.retry_failed())

    def neighbours(
        self, queue: str, job_id: str
    ) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str, str, str]]]:
        """The jobs one job of the flow waits for and the jobs that wait for it, each
        as ``(name in the flow, queue, id, on_failure of the edge)``."""
        names = {(q, i): n for q, i, n in self.record.jobs}
        waits_for, needed_by = [], []
        for dq, di, edge in self.record.edges:
            policy = edge.on_failure.value
            if (dq, di) == (queue, job_id):
                waits_for.append((edge.name, edge.queue, edge.job_id, policy))
            if (edge.queue, edge.job_id) == (queue, job_id):
                needed_by.append((names.get((dq, di), di), dq, di, policy))
        return waits_for, needed_by

    def _job_dict(self, name: str) -> dict[str, Any]:
        if self._briefs is not None:
            brief = self._briefs[name]
            if brief is None:
                return {"state": None}
            return {"state": brief.state.value, "attempts": brief.attempts, "task": brief.name}
        job = self.jobs.get(name)
        if job is None or job._record is None:
            return {"state": None}
        data = job.to_dict()
        return {k: data[k] for k in ("state", "attempts", "result", "errors")} | {
            "task": data["name"]
        }

    def to_dict(self) -> dict[str, Any]:
        """The flow, its jobs and edges as JSON-friendly values (for the HTTP API)."""
        done, total = self.progress
        names = {(q, i): n for q, i, n in self.record.jobs}
        return {
            "id": self.id,
            "state": self.state,
            "progress": {"done": done, "total": total},
            "created_at": self.record.created_at,
            "fail_fast": self.record.fail_fast,
            "jobs": [
                {"name": name, "queue": queue, "id": job_id} | self._job_dict(name)
                for queue, job_id, name in self.record.jobs
            ],
            "edges": [
                {
                    "from": edge.name,
                    "to": names[(queue, job_id)],
                    "on_failure": edge.on_failure.value,
                    "pass_result": edge.pass_result,
                }
                for queue, job_id, edge in self.record.edges
            ],
        }


def _dependents_first(record: FlowRecord) -> list[str]:
    """The flow's job names, every job before the jobs it depends on."""
    names = {(q, i): n for q, i, n in record.jobs}
    deps: dict[str, list[str]] = {n: [] for _, _, n in record.jobs}
    for queue, job_id, edge in record.edges:
        deps[names[(queue, job_id)]].append(edge.name)
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:  # post-order: a job's dependencies before it
        stack = [(name, iter(deps[name]))]
        seen.add(name)
        while stack:
            current, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                order.append(current)
            elif nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, iter(deps[nxt])))

    for _, _, name in record.jobs:
        if name not in seen:
            visit(name)
    return order[::-1]


@dataclass(frozen=True, slots=True)
class FlowPage:
    """One page of :meth:`Corral.list_flows`: flows newest first, and the cursor of
    the next page (None on the last)."""

    flows: list[FlowRun]
    next_cursor: str | None


_CURSOR = re.compile(r"([0-9]{1,16})-(.{1,256})", re.DOTALL)


def flow_cursor(record: FlowRecord) -> str:
    """Where a listing resumes after ``record``: ``<created_at>-<id>``."""
    return f"{record.created_at}-{record.id}"


def parse_flow_cursor(cursor: str | None) -> tuple[int, str] | None:
    """The position :func:`flow_cursor` wrote; ValidationError for any other text."""
    if cursor is None:
        return None
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise ValidationError(f"cursor {cursor!r} is not one a flow listing gave")
    return int(match[1]), match[2]
