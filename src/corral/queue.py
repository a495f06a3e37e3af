"""The queue handle: counts, listing, pause/resume, cleaning and bulk actions."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING

from corral._sync import run_sync
from corral.backends.base import JobState, QueueLimits, QueueStats, WorkerInfo
from corral.errors import ValidationError
from corral.job import Job
from corral.policy import check_queue_name
from corral.search import (
    BulkAction,
    BulkResult,
    JobFilter,
    JobPage,
    SearchPage,
    decode_cursor,
    encode_cursor,
    job_state,
)

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["KEEP", "Keep", "Queue"]

_PAGE = 1000

_Rate = tuple[int, float | timedelta]


class Keep(Enum):
    """``set_limits``: an argument not given (keep the current limit), unlike None."""

    KEEP = "keep"


KEEP = Keep.KEEP


def _rate_of(count: int | None, window: float | None) -> _Rate | None:
    return None if count is None or window is None else (count, window)


_CENTURY = 100 * 365 * 86400


def _state(state: JobState | str) -> JobState:
    return job_state(state)


def _bounded(name: str, value: object, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise ValidationError(f"{name} must be an integer from 1 to {top:,}, got {value!r}")
    return value


class Queue:
    """One named queue of an app."""

    def __init__(self, app: Corral, name: str) -> None:
        self._app = app
        self.name = check_queue_name(name)

    def __repr__(self) -> str:
        return f"<Queue {self.name}>"

    async def counts(self) -> dict[str, int]:
        """Jobs per state (waiting, active, delayed, completed, failed, cancelled) and
        ``paused`` (0/1)."""
        backend = await self._app.backend()
        return await backend.counts(self.name)

    async def jobs(
        self, state: JobState | str = JobState.WAITING, *, offset: int = 0, limit: int = 50
    ) -> list[Job]:
        """Jobs in one state, a page at a time: waiting in the order they will run,
        delayed by due time, active by lease, finished ones newest first."""
        if not 0 <= offset <= 10_000_000 or not 1 <= limit <= 10_000:
            raise ValidationError("offset must be 0-10,000,000 and limit 1-10,000")
        backend = await self._app.backend()
        records = await backend.list_jobs(self.name, _state(state), offset, limit)
        return [Job(self._app, self.name, r.id, r) for r in records]

    async def page(
        self, state: JobState | str, *, cursor: str | None = None, limit: int = 50
    ) -> JobPage:
        """One page of the jobs in ``state``, in :meth:`jobs` order; pass
        ``next_cursor`` back as ``cursor`` for the next. A job that stays in the state
        is on exactly one page however others move. ValidationError for a bad state,
        limit (1-1,000) or cursor."""
        wanted = _state(state)
        limit = _bounded("limit", limit, 1000)
        after = None if cursor is None else decode_cursor(cursor, wanted)
        backend = await self._app.backend()
        page = await backend.page_jobs(self.name, wanted, after, limit)
        nxt = None if page.next is None else encode_cursor(wanted, page.next)
        return JobPage([Job(self._app, self.name, r.id, r) for r in page.jobs], nxt)

    async def search(
        self, filter: JobFilter, *, cursor: str | None = None, limit: int = 50, scan: int = 5000
    ) -> SearchPage:
        """Up to ``limit`` jobs that ``filter`` matches, reading at most ``scan`` jobs
        of its state (1-100,000) from ``cursor`` on: a search of a huge state answers
        in bounded time; search on with ``next_cursor`` until ``exhausted``."""
        if not isinstance(filter, JobFilter):
            raise ValidationError(f"filter must be a JobFilter, got {filter!r}")
        state = filter.job_state
        limit = _bounded("limit", limit, 1000)
        scan = _bounded("scan", scan, 100_000)
        after = None if cursor is None else decode_cursor(cursor, state)
        backend = await self._app.backend()
        if filter.job_id is not None:
            record = await backend.get(self.name, filter.job_id)
            hit = [] if record is None or not filter.matches(record) else [record]
            return SearchPage(
                [Job(self._app, self.name, r.id, r) for r in hit], None, 1, scan, True
            )
        found = await backend.scan_jobs(self.name, state, after, limit, scan, filter.matches)
        nxt = None if found.resume is None else encode_cursor(state, found.resume)
        jobs = [Job(self._app, self.name, r.id, r) for r in found.jobs]
        return SearchPage(jobs, nxt, found.scanned, scan, nxt is None)

    async def bulk(
        self,
        action: BulkAction,
        *,
        ids: Sequence[str] | None = None,
        filter: JobFilter | None = None,
        progress: Callable[[int, int], object] | None = None,
    ) -> BulkResult:
        """Retry, cancel, remove or promote the jobs ``ids`` names (up to 10,000) or
        every job ``filter`` matches (walked in chunks, whatever their number).
        ``progress(done, matched)`` is called after each chunk: ids (or jobs of the
        filter's state) gone through so far, and jobs found so far. A job in a state
        the action does not apply to is skipped. ValidationError for a bad request."""
        from corral.bulk import run_bulk

        return await run_bulk(self._app, self.name, action, ids, filter, progress)

    async def workers(self) -> list[WorkerInfo]:
        """The live workers that serve this queue (empty: its jobs wait for one)."""
        return [w for w in await self._app.workers() if self.name in w.queues]

    async def pause(self) -> None:
        """Stop workers from starting jobs of this queue (running jobs finish;
        enqueueing still works)."""
        backend = await self._app.backend()
        await backend.set_paused(self.name, True)

    async def resume(self) -> None:
        """Undo :meth:`pause`."""
        backend = await self._app.backend()
        await backend.set_paused(self.name, False)

    async def set_limits(
        self,
        *,
        max_active: int | Keep | None = KEEP,
        rate: _Rate | Keep | None = KEEP,
        group_max_active: int | Keep | None = KEEP,
        group_rate: _Rate | Keep | None = KEEP,
    ) -> QueueLimits:
        """Change flow control for every worker of this queue; returns the limits now
        in force. Only the limits given change: ``set_limits(rate=...)`` keeps
        ``max_active``; ``None`` removes one limit, :meth:`clear_limits` all of them.

        ``max_active`` jobs running at once; ``rate=(n, window)``: at most ``n`` jobs
        started per ``window`` seconds (e.g. ``rate=(100, 60)`` for 100/minute).
        ``group_max_active`` and ``group_rate`` apply the same to each group (tenant)
        on its own. Jobs over a limit wait in the queue; they never fail. Two calls
        at the same moment on one queue: the later one's read may miss the earlier
        one's change (read, merge, write).
        """
        backend = await self._app.backend()
        current = await backend.limits(self.name)
        whole = _limits(
            current.max_active if max_active is KEEP else max_active,
            (_rate_of(current.rate_max, current.rate_window) if rate is KEEP else rate),
        )
        per_group = _limits(
            current.group_max_active if group_max_active is KEEP else group_max_active,
            (
                _rate_of(current.group_rate_max, current.group_rate_window)
                if group_rate is KEEP
                else group_rate
            ),
            prefix="group_",
        )
        limits = QueueLimits(
            whole.max_active,
            whole.rate_max,
            whole.rate_window,
            per_group.max_active,
            per_group.rate_max,
            per_group.rate_window,
        )
        if limits != current:
            await backend.set_limits(self.name, limits)
        return limits

    async def clear_limits(self) -> QueueLimits:
        """Remove every flow-control limit of this queue."""
        backend = await self._app.backend()
        await backend.set_limits(self.name, QueueLimits())
        return QueueLimits()

    async def limits(self) -> QueueLimits:
        """The queue's current flow-control limits."""
        backend = await self._app.backend()
        return await backend.limits(self.name)

    async def clean(
        self,
        state: JobState | str = JobState.COMPLETED,
        *,
        older_than: float | timedelta = 0,
        limit: int = 10_000,
    ) -> int:
        """Delete finished jobs (completed, failed or cancelled) older than
        ``older_than`` seconds, at most ``limit``. Returns how many were deleted."""
        seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
        if not 0 <= seconds <= _CENTURY or limit < 1:
            raise ValidationError("older_than must be between 0 and 100 years, limit >= 1")
        backend = await self._app.backend()
        return await backend.clean(self.name, _state(state), int(seconds * 1000), limit)

    async def drain(self, *, delayed: bool = False) -> int:
        """Delete every waiting job (and delayed ones with ``delayed=True``)."""
        backend = await self._app.backend()
        return await backend.drain(self.name, delayed)

    async def retry_all(self, state: JobState | str = JobState.FAILED) -> int:
        """Put every failed (or cancelled) job back to waiting. Returns how many. A job
        of a flow takes along its dependents that ended failed or cancelled through
        it, as :meth:`Job.retry` does (they wait ``blocked`` for it again)."""
        wanted = _state(state)
        if wanted not in (JobState.FAILED, JobState.CANCELLED):
            raise ValidationError("retry_all takes 'failed' or 'cancelled'")
        return (await self.bulk("retry", filter=JobFilter(wanted))).changed

    async def cancel_all(self) -> int:
        """Cancel every waiting and delayed job. Returns how many."""
        backend = await self._app.backend()
        total = 0
        for state in (JobState.WAITING, JobState.DELAYED):
            while page := await backend.list_jobs(self.name, state, 0, _PAGE):
                for record in page:
                    kept = self._app.cancelled_retention(record.name)
                    if await backend.cancel(self.name, record.id, kept) is JobState.CANCELLED:
                        total += 1
        return total

    async def stats(self) -> QueueStats:
        """Totals since the queue was created (completed, failed, retried) and the
        processing-time histogram (see ``corral.backends.base.DURATION_BUCKETS``)."""
        backend = await self._app.backend()
        return await backend.stats(self.name)

    async def events(self) -> AsyncGenerator[tuple[str, str], None]:
        """Subscribe to lifecycle events; returns once subscribed, so nothing after
        the call is missed. Iterate for ``(event, job_id)`` (added, active, progress,
        log, retrying, completed, failed, cancelled, waiting, removed); ``aclose()`` to
        stop. Best effort: re-read a job when its exact state matters."""
        backend = await self._app.backend()
        return await backend.events(self.name)

    # -- blocking twins -------------------------------------------------------------

    def counts_sync(self) -> dict[str, int]:
        """Blocking twin of :meth:`counts`."""
        return run_sync(self.counts())

    def jobs_sync(
        self, state: JobState | str = JobState.WAITING, *, offset: int = 0, limit: int = 50
    ) -> list[Job]:
        """Blocking twin of :meth:`jobs`."""
        return run_sync(self.jobs(state, offset=offset, limit=limit))

    def page_sync(
        self, state: JobState | str, *, cursor: str | None = None, limit: int = 50
    ) -> JobPage:
        """Blocking twin of :meth:`page`."""
        return run_sync(self.page(state, cursor=cursor, limit=limit))

    def search_sync(
        self, filter: JobFilter, *, cursor: str | None = None, limit: int = 50, scan: int = 5000
    ) -> SearchPage:
        """Blocking twin of :meth:`search`."""
        return run_sync(self.search(filter, cursor=cursor, limit=limit, scan=scan))

    def bulk_sync(
        self,
        action: BulkAction,
        *,
        ids: Sequence[str] | None = None,
        filter: JobFilter | None = None,
        progress: Callable[[int, int], object] | None = None,
    ) -> BulkResult:
        """Blocking twin of :meth:`bulk` (``progress`` is called on the portal's
        thread)."""
        return run_sync(self.bulk(action, ids=ids, filter=filter, progress=progress))

    def workers_sync(self) -> list[WorkerInfo]:
        """Blocking twin of :meth:`workers`."""
        return run_sync(self.workers())

    def pause_sync(self) -> None:
        """Blocking twin of :meth:`pause`."""
        run_sync(self.pause())

    def resume_sync(self) -> None:
        """Blocking twin of :meth:`resume`."""
        run_sync(self.resume())

    def clean_sync(
        self,
        state: JobState | str = JobState.COMPLETED,
        *,
        older_than: float | timedelta = 0,
        limit: int = 10_000,
    ) -> int:
        """Blocking twin of :meth:`clean`."""
        return run_sync(self.clean(state, older_than=older_than, limit=limit))

    def drain_sync(self, *, delayed: bool = False) -> int:
        """Blocking twin of :meth:`drain`."""
        return run_sync(self.drain(delayed=delayed))

    def retry_all_sync(self, state: JobState | str = JobState.FAILED) -> int:
        """Blocking twin of :meth:`retry_all`."""
        return run_sync(self.retry_all(state))

    def cancel_all_sync(self) -> int:
        """Blocking twin of :meth:`cancel_all`."""
        return run_sync(self.cancel_all())

    def set_limits_sync(
        self,
        *,
        max_active: int | Keep | None = KEEP,
        rate: _Rate | Keep | None = KEEP,
        group_max_active: int | Keep | None = KEEP,
        group_rate: _Rate | Keep | None = KEEP,
    ) -> QueueLimits:
        """Blocking twin of :meth:`set_limits`."""
        return run_sync(
            self.set_limits(
                max_active=max_active,
                rate=rate,
                group_max_active=group_max_active,
                group_rate=group_rate,
            )
        )

    def clear_limits_sync(self) -> QueueLimits:
        """Blocking twin of :meth:`clear_limits`."""
        return run_sync(self.clear_limits())

    def stats_sync(self) -> QueueStats:
        """Blocking twin of :meth:`stats`."""
        return run_sync(self.stats())


def _limits(
    max_active: int | None, rate: tuple[int, float | timedelta] | None, prefix: str = ""
) -> QueueLimits:
    if max_active is not None and (
        isinstance(max_active, bool) or not isinstance(max_active, int) or max_active < 1
    ):
        raise ValidationError(f"{prefix}max_active must be an integer >= 1, got {max_active!r}")
    if rate is None:
        return QueueLimits(max_active=max_active)
    try:
        count, window = rate
    except (TypeError, ValueError):
        raise ValidationError(f"{prefix}rate must be (jobs, seconds), got {rate!r}") from None
    seconds = window.total_seconds() if isinstance(window, timedelta) else window
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValidationError(f"{prefix}rate: jobs must be an integer >= 1, got {count!r}")
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0.001 <= seconds <= 86400 * 7
    ):
        raise ValidationError(
            f"{prefix}rate: window must be between 0.001 s and 7 days, got {window!r}"
        )
    return QueueLimits(max_active=max_active, rate_max=count, rate_window=float(seconds))
