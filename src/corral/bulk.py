"""Bulk actions (retry, cancel, remove, promote) on ids or on everything a filter
matches; :meth:`corral.queue.Queue.bulk` is the public entry point."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from corral.backends.base import Backend, JobRecord, JobState, Position
from corral.errors import InvalidTransition, JobNotFound, ValidationError
from corral.search import BULK_ACTIONS, BulkResult, JobFilter

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["MAX_IDS", "FlowRetries", "run_bulk"]

#: Most ids one bulk call takes (a filter has no limit: it is walked in chunks).
MAX_IDS = 10_000
_CHUNK = 500  # jobs acted on per step of a filter walk
_SCAN = 5_000  # jobs read per step
_READS = 100  # records read at once for a list of ids

Progress = Callable[[int, int], object]


def check_request(
    action: str, ids: Sequence[str] | None, flt: JobFilter | None
) -> tuple[list[str] | None, JobFilter | None]:
    """The ids (deduplicated, in order) or the filter; ValidationError naming the
    field when the request is not one a bulk action can take."""
    if action not in BULK_ACTIONS:
        raise ValidationError(f"action must be one of {', '.join(BULK_ACTIONS)}, got {action!r}")
    if (ids is None) == (flt is None):
        raise ValidationError("give either ids or filter (exactly one)")
    if flt is not None:
        if not isinstance(flt, JobFilter):
            raise ValidationError(f"filter must be a JobFilter, got {flt!r}")
        if flt.job_state not in BULK_ACTIONS[action]:
            states = ", ".join(sorted(s.value for s in BULK_ACTIONS[action]))
            raise ValidationError(
                f"filter.state: {action} applies to {states} jobs, not {flt.job_state.value}"
            )
        return None, flt
    assert ids is not None
    if isinstance(ids, str | bytes) or not all(isinstance(i, str) and i for i in ids):
        raise ValidationError("ids must be a list of job ids (non-empty text)")
    unique = list(dict.fromkeys(ids))
    if not 1 <= len(unique) <= MAX_IDS:
        raise ValidationError(f"ids must hold 1-{MAX_IDS:,} job ids, got {len(unique):,}")
    return unique, None


class FlowRetries:
    """The failed and cancelled flow jobs a bulk retry met, held by flow until the walk
    is over and then retried as :meth:`corral.job.Job.retry` would, each flow's in one
    :meth:`Backend.retry_flow` call: the dependents that failed or were skipped through
    them go back ``blocked`` (never left failed while their dependency runs again), a
    fan-in whose dependencies are all retried waits for all of them, and the order the
    walk met them in does not matter. A job its flow does not take back (no flow
    record, as for a spawned child; or failed by a dependency left failed) is retried
    alone, as ``job.retry()`` does."""

    def __init__(self) -> None:
        # flow id -> (queue, id) -> (state, finished_at) when read
        self._roots: dict[str, dict[tuple[str, str], tuple[JobState, int | None]]] = {}

    def add(self, job: JobRecord) -> None:
        assert job.flow is not None
        seen = (job.state, job.finished_at)
        self._roots.setdefault(job.flow, {})[(job.queue, job.id)] = seen

    async def apply(self, backend: Backend) -> int:
        """Retry what was added; how many of those jobs were put back."""
        changed = 0
        alone: dict[str, list[str]] = {}
        for flow_id, roots in self._roots.items():
            try:
                await backend.retry_flow(flow_id, list(roots))
            except JobNotFound:  # no flow record: each job alone
                for queue, job_id in roots:
                    alone.setdefault(queue, []).append(job_id)
                continue
            by_queue: dict[str, list[str]] = {}
            for queue, job_id in roots:
                by_queue.setdefault(queue, []).append(job_id)
            keys = [(q, i) for q, ids in by_queue.items() for i in ids]
            read = await asyncio.gather(*(backend.get_many(q, ids) for q, ids in by_queue.items()))
            now = [record for records in read for record in records]
            for key, record in zip(keys, now, strict=True):
                if record is None:
                    continue  # removed meanwhile
                if (record.state, record.finished_at) == roots[key]:
                    alone.setdefault(key[0], []).append(key[1])  # untouched by its flow
                else:
                    changed += 1
        for queue, ids in alone.items():
            for start in range(0, len(ids), _CHUNK):
                changed += sum(await backend.retry(queue, ids[start : start + _CHUNK]))
        self._roots.clear()
        return changed


async def _act(
    app: Corral,
    backend: Backend,
    queue: str,
    action: str,
    jobs: Sequence[JobRecord],
    flows: FlowRetries,
) -> int:
    """Apply ``action`` to each job; how many it changed (flow jobs to retry are
    handed to ``flows`` instead, and counted when it is applied)."""
    applies = BULK_ACTIONS[action]
    jobs = [j for j in jobs if j.state in applies]
    if action == "retry":
        for job in jobs:
            if job.flow:
                flows.add(job)
        return sum(await backend.retry(queue, [j.id for j in jobs if not j.flow]))
    changed = 0
    for job in jobs:
        try:
            if action == "cancel":
                kept = app.cancelled_retention(job.name)
                done = await backend.cancel(queue, job.id, kept) in (
                    JobState.CANCELLED,
                    JobState.ACTIVE,  # asked to stop: it ends cancelled when it does
                )
            elif action == "remove":
                done = await backend.remove(queue, job.id)
            else:
                done = await backend.promote(queue, job.id)
        except (JobNotFound, InvalidTransition):
            done = False  # it moved on since it was read
        changed += done
    return changed


async def run_bulk(
    app: Corral,
    queue: str,
    action: str,
    ids: Sequence[str] | None,
    flt: JobFilter | None,
    progress: Progress | None,
) -> BulkResult:
    """See :meth:`corral.queue.Queue.bulk`."""
    wanted, flt = check_request(action, ids, flt)
    backend = await app.backend()
    flows = FlowRetries()
    matched = changed = 0
    if wanted is not None:
        for start in range(0, len(wanted), _READS):
            batch = wanted[start : start + _READS]
            found = await asyncio.gather(*(backend.get(queue, i) for i in batch))
            jobs = [j for j in found if j is not None]
            matched += len(jobs)
            changed += await _act(app, backend, queue, action, jobs, flows)
            if progress is not None:
                progress(min(start + _READS, len(wanted)), matched)
        changed += await flows.apply(backend)
        return BulkResult(matched, changed, matched - changed)
    assert flt is not None
    state = flt.job_state
    if flt.job_id is not None:
        job = await backend.get(queue, flt.job_id)
        hits = [job] if job is not None and flt.matches(job) else []
        changed = await _act(app, backend, queue, action, hits, flows)
        changed += await flows.apply(backend)
        if progress is not None:
            progress(len(hits), len(hits))
        return BulkResult(len(hits), changed, len(hits) - changed)
    # Keyset paging: jobs acted on leave the state (or, retried and failed again,
    # sort before the position), so the walk never meets a job twice.
    position: Position | None = None
    scanned = 0
    while True:
        step = await backend.scan_jobs(queue, state, position, _CHUNK, _SCAN, flt.matches)
        matched += len(step.jobs)
        scanned += step.scanned
        changed += await _act(app, backend, queue, action, step.jobs, flows)
        if progress is not None:
            progress(scanned, matched)
        if step.resume is None:
            changed += await flows.apply(backend)
            return BulkResult(matched, changed, matched - changed)
        position = step.resume
