"""The backend protocol: the one seam between Corral and its storage.

Every method that changes a job is one atomic transition (one Lua script on Redis,
one transaction on SQLite). Methods that act on a claimed job take its lease token
and apply only while that token is current: a worker that lost its lease can no
longer change the job ("fencing"). Times (lease deadlines, delays, timestamps) come
from the store's clock, never the caller's, so a worker with a skewed wall clock
cannot expire other workers' leases or run delayed jobs early. All timestamps are
milliseconds since the epoch.

Driver errors never cross this seam: a backend raises :class:`ConnectionFailed`
for an unreachable or failing store and the other :mod:`corral.errors` types for
everything else. A backend that logs an outage itself (once when it begins, once when
it ends) raises ``ConnectionFailed(..., reported=True)`` during it, so callers that
carry on (a worker's loops) do not log each failed step again.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Sequence,
)
from typing import Any, Protocol

from corral.backends.flow_records import (
    DependencyOutcome,
    FlowEdge,
    FlowJob,
    FlowRecord,
    OnFailure,
)
from corral.backends.paging import PageSlice, Position, ScanSlice
from corral.backends.records import (
    COUNTER_KEPT_MS,
    DURATION_BUCKETS,
    HISTORY_STEPS,
    KEEP_ALL,
    POSITION_BOUND,
    AuditRecord,
    ClaimedJob,
    Completion,
    Enqueued,
    HistoryWindow,
    JobBrief,
    JobRecord,
    JobState,
    NewJob,
    OutboxEntry,
    QueueLimits,
    QueueOverview,
    QueueStats,
    RateWindow,
    Retention,
    ScheduleRecord,
    WaitFacts,
    WorkerInfo,
    check_history_window,
)

__all__ = [
    "COUNTER_KEPT_MS",
    "DURATION_BUCKETS",
    "HISTORY_STEPS",
    "KEEP_ALL",
    "POSITION_BOUND",
    "AuditRecord",
    "Backend",
    "ClaimedJob",
    "Completion",
    "DependencyOutcome",
    "Enqueued",
    "FlowEdge",
    "FlowJob",
    "FlowRecord",
    "HistoryWindow",
    "JobBrief",
    "JobRecord",
    "JobState",
    "NewJob",
    "OnFailure",
    "OutboxEntry",
    "PageSlice",
    "Position",
    "QueueLimits",
    "QueueOverview",
    "QueueStats",
    "RateWindow",
    "Retention",
    "ScanSlice",
    "ScheduleRecord",
    "WaitFacts",
    "WorkerInfo",
    "bounded_wait",
    "check_history_window",
    "wait_then_claim",
]


class Backend(Protocol):
    """The storage contract every backend fulfils (see the module docstring)."""

    url: str

    async def connect(self) -> None:
        """Open connections and check the store (version, reachability).

        Raises ConnectionFailed with the URL (password masked) when it cannot.
        """

    async def close(self) -> None:
        """Release every connection; the backend may be connected again later."""

    # -- producer transitions -------------------------------------------------------

    async def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[str | None]:
        """Store jobs as ``waiting`` (or ``delayed``); each job atomically, a large
        call in atomic chunks of up to 1,000 jobs.

        Returns, per job, None when it was stored as given, else the id of the job
        that stands for it: the same id when a job with that id already existed
        (idempotent add: left untouched), or the job holding its dedupe key (for a
        debounced add: that job, updated and pushed back). A backend may return an
        :class:`Enqueued` that says when it stored them (``stored_at_ms``), so the
        caller shows created jobs as stored without reading them back.
        Within one priority and group, jobs are claimed in the order they were
        enqueued; groups with waiting jobs (and the ungrouped jobs as one more) take
        turns.
        """

    # -- worker transitions ---------------------------------------------------------

    async def claim(
        self, queue: str, count: int, lease_ms: int, worker_id: str
    ) -> tuple[list[ClaimedJob], int | None]:
        """Lease up to ``count`` waiting jobs, highest priority first, then in line order.

        Within a priority, jobs join the back of the line when they are enqueued,
        retried, promoted or found due (those by due time); ``release`` and
        ``reap_stalled`` put a job back at the front. Due delayed jobs are promoted
        first. Each claimed job becomes ``active``, its attempt counter grows by one
        and it gets a fresh token and a lease deadline of now + ``lease_ms``. Returns
        the jobs and, when none was claimed, the number of milliseconds until the
        next delayed job is due (or None). A paused queue yields no jobs.
        """

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        """Block up to ``timeout`` seconds until a job may be claimable in a queue.

        Woken by the enqueue itself (no polling); may return early spuriously.
        """

    async def wait_and_claim(
        self,
        queues: Sequence[str],
        timeout: float,
        count: int,
        lease_ms: int,
        worker_id: str,
        stop: asyncio.Event,
    ) -> tuple[list[ClaimedJob], int | None]:
        """:meth:`wait_for_work`, then :meth:`claim` from ``queues[0]``: what an idle
        worker does, and Redis does it in one round trip.

        Never cancel it (jobs may be leased on the way back): set ``stop`` instead;
        it then returns soon, possibly with jobs, which the caller must release.
        """

    async def complete(
        self, queue: str, items: Sequence[Completion], retention: Retention
    ) -> list[bool]:
        """Mark leased jobs ``completed`` with their results, then apply retention.

        Per item, False means the token was not current (lease lost): nothing changed.
        """

    async def fail(
        self,
        queue: str,
        job_id: str,
        token: str,
        error: bytes,
        retry_in_ms: int | None,
        retention: Retention,
        *,
        count_attempt: bool = True,
        cancelled: Retention = KEEP_ALL,
        notify: str = "",
    ) -> bool:
        """Record an attempt's error, then retry the job or dead-letter it.

        ``retry_in_ms=None`` ends the job ``failed`` (kept in the dead-letter set,
        subject to ``retention``); otherwise it becomes ``delayed`` (or ``waiting``
        for 0). ``count_attempt=False`` gives the attempt back when retrying. A job
        whose cancellation was requested ends ``cancelled`` instead (then ``cancelled``
        applies to the queue's cancelled jobs). False when the token is not current.
        ``notify``: outcomes the worker knows to notify (its task's targets), added to
        those the job was enqueued with (see ``NewJob.notify``).
        """

    async def abort(
        self,
        queue: str,
        job_id: str,
        token: str,
        reason: bytes,
        retention: Retention = KEEP_ALL,
        notify: str = "",
    ) -> bool:
        """End a leased job ``cancelled`` (its cancellation was honoured), then apply
        ``retention`` to the queue's cancelled jobs. ``notify``: as in :meth:`fail`."""

    async def release(
        self, queue: str, leases: Sequence[tuple[str, str]], cancelled: Retention = KEEP_ALL
    ) -> int:
        """Hand leased jobs back to ``waiting`` without spending their attempt.

        Used at shutdown. A job whose cancellation was requested ends ``cancelled``
        instead (then ``cancelled`` applies to the queue's cancelled jobs). Returns how
        many were released (stale tokens are skipped).
        """

    async def renew(
        self, queue: str, leases: Sequence[tuple[str, str]], lease_ms: int
    ) -> tuple[list[str], list[str]]:
        """Extend the leases of jobs still held, in one round trip.

        Returns (ids whose lease was lost, ids whose cancellation was requested).
        """

    async def update(
        self,
        queue: str,
        job_id: str,
        token: str,
        progress: bytes | None = None,
        logs: Sequence[str] = (),
    ) -> bool:
        """Set a leased job's progress (JSON text) and/or append log lines, emitting
        ``progress`` and/or ``log`` (once per call); False when ``token`` is not the
        job's current lease (nothing changes)."""

    async def reap_stalled(
        self,
        queue: str,
        max_stalls: int,
        failed: Retention = KEEP_ALL,
        cancelled: Retention = KEEP_ALL,
    ) -> tuple[list[str], list[str]]:
        """Recover active jobs whose lease ran out.

        Each goes back to ``waiting`` (its unfinished attempt given back, its stall
        counter raised) or, past ``max_stalls``, ends ``failed`` with a reason (then
        ``failed`` applies to the queue's failed jobs); one whose cancellation was
        requested ends ``cancelled`` (then ``cancelled`` applies). Returns (requeued
        ids, failed ids). Safe to run from many workers at once.
        """

    # -- control --------------------------------------------------------------------

    async def cancel(self, queue: str, job_id: str, retention: Retention = KEEP_ALL) -> JobState:
        """Cancel a job: waiting/delayed end ``cancelled`` at once (then ``retention``
        applies to the queue's cancelled jobs); an active job is asked to stop (its
        worker is told) and ends ``cancelled`` when it does (see :meth:`abort`).

        Returns the state after the call (cancelling a cancelled job is a no-op that
        returns ``cancelled``). Raises JobNotFound, or InvalidTransition for a job
        already completed or failed.
        """

    async def retry(self, queue: str, job_ids: Sequence[str]) -> list[bool]:
        """Put failed or cancelled jobs back to ``waiting`` with fresh attempts.

        Per id, False when the job is missing or in another state.
        """

    async def promote(self, queue: str, job_id: str) -> bool:
        """Make a delayed job waiting now. False when it is not delayed."""

    async def remove(self, queue: str, job_id: str) -> bool:
        """Delete a job that is not active. False when missing; InvalidTransition if
        the job is active (cancel it first)."""

    async def set_paused(self, queue: str, paused: bool) -> None:
        """Pause or resume claiming from a queue (enqueue still works)."""

    async def set_limits(self, queue: str, limits: QueueLimits) -> None:
        """Replace the queue's flow-control limits (``QueueLimits()`` clears them)."""

    async def limits(self, queue: str) -> QueueLimits:
        """The queue's flow-control limits."""

    async def clean(self, queue: str, state: JobState, older_than_ms: int, limit: int) -> int:
        """Delete up to ``limit`` finished jobs in ``state`` older than the age given."""

    async def drain(self, queue: str, delayed: bool) -> int:
        """Delete every waiting job (and delayed ones if asked). Returns how many."""

    # -- reads ----------------------------------------------------------------------

    async def get(self, queue: str, job_id: str) -> JobRecord | None:
        """Read one job, or None."""

    async def get_many(self, queue: str, job_ids: Sequence[str]) -> list[JobRecord | None]:
        """Read several jobs of one queue in one round trip (one pipeline, one read
        transaction), in the order asked; None for each that does not exist."""

    async def job_briefs(self, queue: str, job_ids: Sequence[str]) -> list[JobBrief | None]:
        """The state, task name and attempts of several jobs of one queue in one round
        trip, in the order asked; None for each that does not exist (for listings of
        many jobs, such as a flow's: nothing else of the jobs is read)."""

    async def list_jobs(
        self, queue: str, state: JobState, offset: int, limit: int
    ) -> list[JobRecord]:
        """Jobs in one state: waiting in claim order, delayed by due time, active by
        lease deadline, finished ones newest first."""

    async def page_jobs(
        self, queue: str, state: JobState, after: Position | None, limit: int
    ) -> PageSlice:
        """Up to ``limit`` jobs in one state, in :meth:`list_jobs` order, starting right
        after position ``after`` (None: the first page; else a position this method
        returned for the same queue and state) in one snapshot.

        Keyset paging: a job that stays in the state between two calls is read exactly
        once however other jobs move; one that leaves or joins may or may not be.
        Raises ValidationError for a position of another shape (state, backend).
        """

    async def scan_jobs(
        self,
        queue: str,
        state: JobState,
        after: Position | None,
        limit: int,
        scan: int,
        match: Callable[[JobRecord], bool],
    ) -> ScanSlice:
        """Walk :meth:`page_jobs` from ``after`` until ``limit`` jobs satisfy ``match``
        or ``scan`` jobs were read (never more): the matches, the position to resume
        from (None when the state was read to its end) and how many jobs were read."""

    async def counts(self, queue: str) -> dict[str, int]:
        """Per-state counts of a queue plus ``paused`` (0/1)."""

    async def queues(self) -> list[str]:
        """Names of the queues in use (that held a job or were given a setting and
        were not forgotten since, see :meth:`overview`), sorted."""

    async def find_job_queue(self, job_id: str) -> str | None:
        """The first of :meth:`queues` (by name) holding a job with this id, or None,
        in a fixed number of round trips whatever the number of queues.

        A read, not a snapshot with a later :meth:`get`: the job may be gone by then.
        """

    async def overview(self) -> list[QueueOverview]:
        """Every queue of :meth:`queues` with its counts and totals, sorted by name, in a
        fixed number of round trips whatever the number of queues.

        Queues found with no job in any state, no schedule, no limits, not paused and
        served by no live worker are forgotten on the way (left out, and dropped from
        :meth:`queues` with what is left of them: their totals); a queue's next job or
        setting brings it back.
        """

    async def wait_finished(self, queue: str, job_id: str, timeout: float) -> JobState | None:
        """Wait until the job reaches a terminal state, woken by the transition itself.

        Returns that state, or None when ``timeout`` ran out: within ``timeout``
        whatever the connection does (a stalled store, a subscription that fails;
        see :func:`bounded_wait`). Raises JobNotFound, and ConnectionFailed /
        BackendError when the store reports trouble before the deadline.
        """

    async def watch_cancellations(
        self, queues: Sequence[str], callback: Callable[[str, str], None]
    ) -> Callable[[], Awaitable[None]]:
        """Call ``callback(queue, job_id)`` when cancellation of an active job is
        requested. Returns a coroutine function that stops watching."""

    async def events(self, queue: str) -> AsyncGenerator[tuple[str, str], None]:
        """Subscribe to a queue's lifecycle events; returns once subscribed, so every
        event after the call is seen. Iterate for ``(event, job_id)`` pairs (added,
        active, progress, log, retrying, completed, failed, cancelled, waiting, removed) and
        ``aclose()`` to stop. Best effort: a consumer that falls far behind may miss
        events (read the job to be sure)."""

    async def all_events(self) -> AsyncGenerator[tuple[str, str, str], None]:
        """:meth:`events` of every queue (those created later too) through ONE
        subscription (Redis: a pattern subscription; SQLite: one tail of the event
        log): ``(queue, event, job_id)`` triples. Returns once subscribed; best effort
        like :meth:`events`, but a stretch of events that may be missing (Redis: the
        pub/sub connection was lost, and is back) is reported as one
        ``("", "gap", "")``. Share it (``Corral.events()`` does) rather than open one
        per consumer."""

    async def stats(self, queue: str) -> QueueStats:
        """The queue's accumulated totals and processing-time histogram."""

    async def wait_facts(self, queue: str, job_id: str) -> WaitFacts | None:
        """What may keep a job from starting (its state and due time, the queue's pause,
        limits and their use, its group's, the queue's live workers, its place in
        line), read in one atomic step; None when the job is missing. Writes nothing.
        """

    async def time_ms(self) -> int:
        """The store's clock."""

    async def history(self, queues: Sequence[str], step: int, count: int) -> HistoryWindow:
        """Outcome counts of ``queues`` in the last ``count`` slots of ``step`` ms,
        the last slot holding the store's now (``step`` one of ``HISTORY_STEPS``,
        ``count`` at most the slots it keeps; ValueError otherwise). A queue or slot
        with nothing recorded counts zeros. ``complete``, ``fail`` and ``reap_stalled``
        add to the counts in the same atomic step as the outcome (completions by run
        time; failures only when a job fails for good); the store forgets minutes
        after about an hour and quarter hours after about a day. One round trip or
        read transaction, whatever the number of queues."""

    # -- audit log ------------------------------------------------------------------

    async def add_audit(
        self, key: str, action: str, target: str, detail: bytes, keep_ms: int
    ) -> str:
        """Append an audit entry stamped with the store's clock, and drop the entries
        older than ``keep_ms`` in the same step (Redis: ``XADD ... MINID``; SQLite: one
        transaction). Returns the new entry's id."""

    async def audit_entries(self, limit: int, before: str | None = None) -> list[AuditRecord]:
        """At most ``limit`` audit entries, newest first; with ``before`` (an entry id
        this backend returned), only entries older than that one. A ``before`` this
        backend cannot have returned raises ValidationError (a ValueError)."""

    # -- schedules ------------------------------------------------------------------

    # -- notifications (the outbox: see OutboxEntry) ---------------------------------

    async def take_outbox(self, queue: str, limit: int, hold_ms: int) -> list[OutboxEntry]:
        """Up to ``limit`` of the queue's outbox entries that are due, each held for
        ``hold_ms`` (not taken again meanwhile; due again after unless acknowledged)."""

    async def ack_outbox(self, queue: str, refs: Sequence[bytes]) -> None:
        """Delete outbox entries that were handed on (unknown refs are ignored)."""

    async def outbox_size(self, queue: str) -> int:
        """How many outbox entries the queue holds (taken or not)."""

    async def bump_counter(self, name: str, window_ms: int) -> tuple[int, int]:
        """Add one to the counter ``name`` in its current window, which the first bump
        after the previous window ended opens for ``window_ms`` (store ms); returns (the
        new count, when the window ends in ms)."""

    async def read_counter(self, name: str, window_end: int) -> int:
        """The count of counter ``name`` in the window that ends at ``window_end`` (as
        :meth:`bump_counter` returned it); 0 once forgotten: :data:`COUNTER_KEPT_MS`
        (or a window, if longer) after its end."""

    async def set_endpoint(self, key: str, state: bytes | None) -> None:
        """Store (or with None, forget) the state of a notification endpoint."""

    async def endpoints(self) -> dict[str, bytes]:
        """Every notification endpoint's stored state, by key."""

    async def upsert_schedule(
        self, queue: str, name: str, definition: bytes, next_at: int | None, *, keep: bool
    ) -> bool:
        """Store a schedule with its pending tick (None: paused). With ``keep``, an
        identical stored definition is left as it is, pending tick included.
        Returns whether anything was written."""

    async def remove_schedule(self, queue: str, name: str) -> bool:
        """Delete a schedule; False when there was none."""

    async def schedules(self, queue: str) -> list[ScheduleRecord]:
        """The queue's schedules, sorted by name."""

    async def fire_schedule(
        self, queue: str, name: str, tick: int, next_at: int | None, job: NewJob | None
    ) -> bool:
        """Atomically: if the schedule's pending tick is still ``tick``, enqueue ``job``
        (None skips the tick), record ``tick`` as the last one fired and make
        ``next_at`` pending. False (nothing done) when another scheduler won."""

    # -- flows (see corral.backends.flow_records) -------------------------------------

    async def add_flow(
        self, flow_id: str, jobs: Sequence[FlowJob], fail_fast: bool = False
    ) -> bool:
        """Store a flow: jobs with dependencies ``blocked``, the others as
        :meth:`enqueue` stores them, and the flow's record.

        ``fail_fast``: a job of the flow failing for good (unless every edge from it
        is ``ignore``) cancels every unfinished job of the flow, each with a
        ``SiblingFailed`` error naming it, in the step that records the failure (on
        Redis, jobs in other queues through the handoff).

        One atomic step on SQLite and on one Redis server; on Redis Cluster a
        creation intent rolled forward step by step (each queue's jobs, blocked jobs
        first, so no job ends before its dependents exist) by the producer, or by a
        worker when the producer stopped, or by adding the same flow again. The
        caller has checked the graph (acyclic, every dependency a job of the flow, job
        ids new). False when a flow with this id existed already.
        """

    async def retry_flow(
        self, flow_id: str, roots: Collection[tuple[str, str]] | None = None
    ) -> int:
        """Put the flow's failed and cancelled jobs back with fresh attempts, never its
        completed ones: a job whose dependencies are retried with it (or lack an
        outcome) goes back ``blocked``, the others ``waiting``; outcomes of the retried
        dependencies are forgotten, and any of theirs from before the retry that is
        still on its way is ignored. Returns how many jobs were put back. Raises
        JobNotFound for an unknown flow, InvalidTransition while a job of it is
        unfinished. Atomic on SQLite; on Redis one step per queue, blocked jobs first.

        ``roots`` ((queue, id) of failed or cancelled jobs of the flow: what
        ``job.retry()`` and bulk retries pass): only those jobs and their dependents
        that ended failed or cancelled through them, whatever the flow's other jobs are
        doing; a root whose own dependency (not among the roots) failed it is left
        out, to be retried alone by the caller (0 when no root qualifies). Retrying
        several roots of a flow in one call, not one call each, is what keeps a
        fan-in whose dependencies are all retried from hearing their old outcomes.
        """

    async def park(
        self,
        queue: str,
        job_id: str,
        token: str,
        spawn_id: str,
        children: Sequence[FlowJob],
        on_failure: OnFailure = OnFailure.FAIL,
    ) -> bool:
        """Store ``children`` (each named by its FlowJob name; one may depend on
        others, e.g. a chain: it is stored ``blocked``) as dependencies of the leased
        job, which gives its lease and attempt back and waits ``blocked`` until they
        have all ended (``waiting`` at once if they already have); ``spawn_id`` is the
        children's flow id. False (nothing parked)
        when ``token`` is not current; children
        created on Redis before that check then run on their own. Children in the
        job's own queue are stored in the step that parks it."""

    async def get_flow(self, flow_id: str) -> FlowRecord | None:
        """A flow's jobs and edges, or None."""

    async def list_flows(
        self, limit: int, before: tuple[int, str] | None = None
    ) -> list[FlowRecord]:
        """Up to ``limit`` flows, newest first (by ``created_at``, then id, both
        descending), starting after ``before``: the ``(created_at, id)`` of the last
        flow the caller saw. Flows stored by a version without this listing (Redis)
        are not listed until they are started again."""

    async def dependency_outcomes(self, queue: str, job_id: str) -> dict[str, DependencyOutcome]:
        """The outcomes a job received from its dependencies so far, by edge name."""

    async def spawned(self, queue: str, job_id: str) -> list[tuple[str, str, str]]:
        """The children a job spawned (:meth:`park`), every wait's, as (queue, id, edge
        name) in the order spawned (by spawn, then child: ids ``<job id>.s<k>.<n>``);
        children removed since are listed too. Redis: children of a job parked by a
        version without this listing are not (the relation was kept on the child only)."""

    async def dependents(
        self, queue: str, job_ids: Sequence[str]
    ) -> list[tuple[str, str, FlowEdge]]:
        """The jobs waiting for jobs of ``queue`` (in a flow, or as the parent that
        spawned them), as a flow record's edges: (dependent queue, dependent id, edge
        whose ``queue``/``job_id`` is the job waited for), in no set order. Edges stay
        after the outcome is handed over; an edge to a dependent removed since may be
        listed (Redis). One read: SQLite one query, Redis one pipeline over ``queue``'s
        slot (each job keeps its dependents)."""

    async def prune_flows(self, queue: str) -> int:
        """Delete the records of flows that lost their last job (retention, remove,
        drain) in ``queue``: a flow's record lives as long as any of its jobs. Returns
        how many were deleted. Redis: the flows noted in ``queue``'s ``fgone`` set by
        the step that deleted a job (idempotent, safe from many workers); SQLite:
        always 0, the record goes in the transaction that deletes its last job."""

    async def pass_handoffs(self, queue: str) -> int:
        """Apply outcomes waiting to reach dependents in other queues (Redis: the
        handoff list of ``queue``; idempotent, safe from many workers). Every job
        that ends in a flow adds to it in the step that records its outcome. Returns
        how many were applied; always 0 where outcomes reach every queue at once."""

    # -- workers --------------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo, ttl_ms: int) -> None:
        """Record (or refresh) a live worker; it disappears ``ttl_ms`` after its last
        refresh."""

    async def unregister_worker(self, worker_id: str) -> None:
        """Remove a worker's record at once."""

    async def workers(self) -> list[WorkerInfo]:
        """The live workers."""


async def bounded_wait(
    timeout: float, wait: Coroutine[Any, Any, JobState | None]
) -> JobState | None:
    """``await wait``, or None once ``timeout`` seconds have passed, whatever ``wait``
    is blocked on (a read queued behind a stalled connection, a subscription Redis
    never confirms): every :meth:`Backend.wait_finished` keeps its bound through this."""
    try:
        async with asyncio.timeout(timeout):
            return await wait
    except TimeoutError:
        return None


_WAIT_CLEANUP = 6.0  # seconds a cancelled wait may take to end its blocking calls


def _read_outcome(future: asyncio.Future[Any]) -> None:
    # A wait cancelled by a stop may still fail while it cleans up: nobody reads that.
    if not future.cancelled():
        future.exception()


async def wait_then_claim(
    backend: Backend,
    queues: Sequence[str],
    timeout: float,
    count: int,
    lease_ms: int,
    worker_id: str,
    stop: asyncio.Event,
    *,
    wait: Awaitable[None] | None = None,
) -> tuple[list[ClaimedJob], int | None]:
    """:meth:`Backend.wait_and_claim` in two steps, for backends without a faster way.
    ``wait`` replaces ``backend.wait_for_work(queues, timeout)``. The wait alone is
    cancelled when ``stop`` is set (it leases nothing)."""
    waiter = asyncio.ensure_future(wait or backend.wait_for_work(queues, timeout))
    waiter.add_done_callback(_read_outcome)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not waiter.done():
            waiter.cancel()
            # Let the wait end its own blocking calls before the caller goes on,
            # perhaps to close the backend under it.
            await asyncio.wait([waiter], timeout=_WAIT_CLEANUP)
    if stop.is_set():
        return [], None
    if not waiter.cancelled():
        waiter.result()  # a failed wait: let the caller see the backend trouble
    return await backend.claim(queues[0], count, lease_ms, worker_id)
