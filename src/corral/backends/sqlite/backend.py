"""The SQLite implementation of :class:`corral.backends.base.Backend`.

Same semantics as Redis, transition for transition: each method is one
transaction (``BEGIN IMMEDIATE`` for writes) whose SQL lives in ``queries.py``.
The store's clock is this machine's clock, read in :func:`_now_us` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from functools import partial

import orjson

from corral.backends.base import (
    KEEP_ALL,
    ClaimedJob,
    Completion,
    JobBrief,
    JobRecord,
    JobState,
    NewJob,
    Retention,
    bounded_wait,
    wait_then_claim,
)
from corral.backends.sqlite import queries as q
from corral.backends.sqlite.admin import SQLiteAdmin
from corral.backends.sqlite.audit import SQLiteAudit
from corral.backends.sqlite.changes import ChangeFeed
from corral.backends.sqlite.claims import claim as claim_jobs
from corral.backends.sqlite.facts import SQLiteFacts
from corral.backends.sqlite.flows import SQLiteFlows
from corral.backends.sqlite.history import FAILED, SQLiteHistory, add_history
from corral.backends.sqlite.outbox import SQLiteOutbox
from corral.backends.sqlite.paging import SQLitePaging
from corral.backends.sqlite.rows import (
    add_error,
    add_stat,
    back_seq,
    clock_us,
    delete,
    emit,
    event_ids,
    front_seq,
    insert_jobs,
    leased,
    observe,
    records,
    retain,
    stalled_error,
    to_cancelled,
)
from corral.backends.sqlite.store import Store, open_store, path_from_url
from corral.backends.sqlite.streams import SQLiteStreams
from corral.errors import ConfigurationError, InvalidTransition, JobNotFound

__all__ = ["SQLiteBackend", "path_from_url"]

Conn = sqlite3.Connection
_EVENT_LOG_SIZE = 10_000


class SQLiteBackend(
    SQLiteFlows,
    SQLiteOutbox,
    SQLiteAudit,
    SQLiteHistory,
    SQLiteFacts,
    SQLiteAdmin,
    SQLiteStreams,
    SQLitePaging,
):
    """Corral's storage in one SQLite file (WAL mode), shared by any number of
    processes on this machine. ``poll_interval`` is how often waiters look for
    changes made by other processes (their wake-up latency)."""

    def __init__(self, url: str, *, poll_interval: float = 0.005, durable: bool = False) -> None:
        self.url = url
        self.path = path_from_url(url)
        self.durable = durable
        self._poll_interval = poll_interval
        self._store: Store | None = None
        self._feed: ChangeFeed | None = None
        # Per worker, as any number of workers may share this object: the cancellation
        # watches, and the change event taken before each worker's claim began (an
        # enqueue between an empty claim and the wait still wakes that worker).
        self._cancel_watches: set[asyncio.Task[None]] = set()
        self._claim_events: dict[str, asyncio.Event] = {}

    def _s(self) -> Store:
        if self._store is None:
            raise ConfigurationError("the backend is not connected (call connect() first)")
        return self._store

    async def connect(self) -> None:
        if self._store is not None:
            return
        store = open_store(self.path, durable=self.durable)
        store.acquire()
        try:
            await store.open()
        except BaseException:
            await store.release()
            raise
        self._store = store
        self._feed = ChangeFeed(store, self._poll_interval)

    async def close(self) -> None:
        for watch in list(self._cancel_watches):
            await _stop_task(watch)
        self._cancel_watches.clear()
        self._claim_events.clear()
        if self._feed is not None:
            await self._feed.close()
            self._feed = None
        if self._store is not None:
            await self._store.release()
            self._store = None

    # -- producer -------------------------------------------------------------------

    async def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[str | None]:
        return await self._s().write(partial(insert_jobs, queue=queue, jobs=jobs))

    # -- worker ---------------------------------------------------------------------

    async def claim(
        self, queue: str, count: int, lease_ms: int, worker_id: str
    ) -> tuple[list[ClaimedJob], int | None]:
        # Random, not clock-based: a token must never repeat, even if the clock steps back.
        prefix = f"{worker_id}:{os.urandom(6).hex()}:"
        if self._feed is not None:
            event = self._claim_events.get(worker_id)
            if event is None or event.is_set():
                self._claim_events[worker_id] = self._feed.current()

        return await self._s().write(
            partial(
                claim_jobs,
                queue=queue,
                count=count,
                lease_ms=lease_ms,
                worker_id=worker_id,
                prefix=prefix,
            )
        )

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        await self._wait_since(None, timeout)

    async def _wait_since(self, worker_id: str | None, timeout: float) -> None:
        """Wait for a change since ``worker_id``'s last claim began (now, for None)."""
        assert self._feed is not None, "not connected"
        event = (self._claim_events.get(worker_id) if worker_id else None) or self._feed.current()
        if not event.is_set():  # set: something changed since the claim began
            await self._feed.wait(event, timeout)

    async def wait_and_claim(
        self,
        queues: Sequence[str],
        timeout: float,
        count: int,
        lease_ms: int,
        worker_id: str,
        stop: asyncio.Event,
    ) -> tuple[list[ClaimedJob], int | None]:
        wait = self._wait_since(worker_id, timeout)
        return await wait_then_claim(
            self, queues, timeout, count, lease_ms, worker_id, stop, wait=wait
        )

    async def complete(
        self, queue: str, items: Sequence[Completion], retention: Retention
    ) -> list[bool]:
        def tx(conn: Conn) -> list[bool]:
            now_us = clock_us()
            now_ms = now_us // 1000
            # The leases that still hold, read once; each is completed at most once
            # (its token is cleared), so a repeated item is a stale one.
            ids = orjson.dumps([item.id for item in items]).decode()
            held: dict[tuple[str, str], int | None] = {
                (job_id, token): started
                for job_id, token, started in conn.execute(q.TOKENS, (queue, ids))
            }
            done = []
            durations: list[float] = []
            updates = []
            notify = []
            for offset, item in enumerate(items):
                ok = (item.id, item.token) in held
                done.append(ok)
                if not ok:
                    continue
                started = held.pop((item.id, item.token))
                finished = now_us + offset
                if item.notify:
                    notify.append((item.notify, queue, item.id, item.token))
                updates.append(
                    (item.result, finished // 1000, finished, queue, item.id, item.token)
                )
                durations.append(max(0, now_ms - (started or 0)) / 1000)
            if notify:
                conn.executemany(q.ADD_NOTIFY, notify)
            if updates:
                conn.executemany(q.COMPLETE, updates)
                emit(conn, queue, "completed", *(u[4] for u in updates))
            if durations:
                add_history(conn, queue, now_us // 1000, observe(conn, queue, durations))
                retain(conn, queue, "completed", retention, now_us + len(items))
            return done

        return await self._s().write(tx)

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
        def tx(conn: Conn) -> bool:
            row = leased(conn, queue, job_id, token)
            if row is None:
                return False
            now_us = clock_us()
            add_error(conn, queue, job_id, error)
            if notify:
                conn.execute(q.ADD_NOTIFY, (notify, queue, job_id, token))
            if row[0]:
                to_cancelled(conn, queue, job_id, now_us)
                retain(conn, queue, "cancelled", cancelled, now_us)
            elif retry_in_ms is None:
                conn.execute(q.TO_FAILED, (now_us // 1000, now_us, queue, job_id))
                add_stat(conn, queue, "failed", 1)
                add_history(conn, queue, now_us // 1000, {FAILED: 1})
                emit(conn, queue, "failed", job_id)
                retain(conn, queue, "failed", retention, now_us)
            else:
                give_back = 0 if count_attempt else -1
                if retry_in_ms <= 0:
                    conn.execute(q.TO_WAITING, (back_seq(conn, queue), give_back, queue, job_id))
                else:
                    run_at = now_us // 1000 + retry_in_ms
                    conn.execute(q.TO_DELAYED, (run_at, give_back, queue, job_id))
                add_stat(conn, queue, "retried", 1)
                emit(conn, queue, "retrying", job_id)
            return True

        return await self._s().write(tx)

    async def abort(
        self,
        queue: str,
        job_id: str,
        token: str,
        reason: bytes,
        retention: Retention = KEEP_ALL,
        notify: str = "",
    ) -> bool:
        def tx(conn: Conn) -> bool:
            if leased(conn, queue, job_id, token) is None:
                return False
            add_error(conn, queue, job_id, reason)
            if notify:
                conn.execute(q.ADD_NOTIFY, (notify, queue, job_id, token))
            now_us = clock_us()
            to_cancelled(conn, queue, job_id, now_us)
            retain(conn, queue, "cancelled", retention, now_us)
            return True

        return await self._s().write(tx)

    async def release(
        self, queue: str, leases: Sequence[tuple[str, str]], cancelled: Retention = KEEP_ALL
    ) -> int:
        def tx(conn: Conn) -> int:
            released = 0
            now_us = clock_us()
            any_cancelled = False
            # Backwards: each goes to the front, so they end up there in the order given.
            for job_id, token in reversed(leases):
                row = leased(conn, queue, job_id, token)
                if row is None:
                    continue
                if row[0]:
                    to_cancelled(conn, queue, job_id, now_us)
                    any_cancelled = True
                else:
                    seq = front_seq(conn, queue, job_id)
                    conn.execute(q.TO_WAITING, (seq, -1, queue, job_id))
                released += 1
            if any_cancelled:
                retain(conn, queue, "cancelled", cancelled, now_us)
            return released

        return await self._s().write(tx) if leases else 0

    async def renew(
        self, queue: str, leases: Sequence[tuple[str, str]], lease_ms: int
    ) -> tuple[list[str], list[str]]:
        def tx(conn: Conn) -> tuple[list[str], list[str]]:
            deadline = clock_us() // 1000 + lease_ms
            lost: list[str] = []
            cancel: list[str] = []
            for job_id, token in leases:
                row = leased(conn, queue, job_id, token)
                if row is None:
                    lost.append(job_id)
                    continue
                conn.execute(q.RENEW, (deadline, queue, job_id, token))
                if row[0]:
                    cancel.append(job_id)
            return lost, cancel

        return await self._s().write(tx) if leases else ([], [])

    async def update(
        self,
        queue: str,
        job_id: str,
        token: str,
        progress: bytes | None = None,
        logs: Sequence[str] = (),
    ) -> bool:
        def tx(conn: Conn) -> bool:
            if leased(conn, queue, job_id, token) is None:
                return False
            if progress is not None:
                conn.execute(q.SET_PROGRESS, (progress, queue, job_id))
                emit(conn, queue, "progress", job_id)
            if logs:
                conn.executemany(q.ADD_LOG, [(queue, job_id, line) for line in logs])
                conn.execute(q.TRIM_LOGS, (queue, job_id, queue, job_id))
                emit(conn, queue, "log", job_id)
            return True

        return await self._s().write(tx)

    async def reap_stalled(
        self,
        queue: str,
        max_stalls: int,
        failed: Retention = KEEP_ALL,
        cancelled: Retention = KEEP_ALL,
    ) -> tuple[list[str], list[str]]:
        check = (queue, clock_us() // 1000, _EVENT_LOG_SIZE)
        expired, trim = await self._s().read(lambda c: c.execute(q.REAP_NEEDED, check).fetchone())
        if not expired and not trim:
            return [], []

        def tx(conn: Conn) -> tuple[list[str], list[str]]:
            now_us = clock_us()
            requeued: list[str] = []
            dead: list[str] = []
            any_cancelled = False
            expired = conn.execute(q.EXPIRED, (queue, now_us // 1000)).fetchall()
            # Backwards: each requeued job goes to the front, so they keep lease order.
            for job_id, stalls, cancel_requested, attempts, worker in reversed(expired):
                conn.execute(q.ADD_STALL, (queue, job_id))
                if cancel_requested:
                    to_cancelled(conn, queue, job_id, now_us)
                    any_cancelled = True
                elif stalls + 1 > max_stalls:
                    add_error(
                        conn,
                        queue,
                        job_id,
                        stalled_error(stalls + 1, max_stalls, attempts, now_us, worker),
                    )
                    conn.execute(q.TO_FAILED, (now_us // 1000, now_us, queue, job_id))
                    add_stat(conn, queue, "failed", 1)
                    emit(conn, queue, "failed", job_id)
                    dead.append(job_id)
                else:
                    seq = front_seq(conn, queue, job_id)
                    conn.execute(q.TO_WAITING, (seq, -1, queue, job_id))
                    requeued.append(job_id)
            if dead:
                add_history(conn, queue, now_us // 1000, {FAILED: len(dead)})
                retain(conn, queue, "failed", failed, now_us)
            if any_cancelled:
                retain(conn, queue, "cancelled", cancelled, now_us)
            # Maintenance calls this regularly: keep the event log bounded here.
            conn.execute(q.TRIM_EVENTS, (_EVENT_LOG_SIZE,))
            return requeued, dead

        return await self._s().write(tx)

    # -- control --------------------------------------------------------------------

    async def cancel(self, queue: str, job_id: str, retention: Retention = KEEP_ALL) -> JobState:
        def tx(conn: Conn) -> str | None:
            row = conn.execute(q.STATE, (queue, job_id)).fetchone()
            if row is None:
                return None
            state: str = row[0]
            if state in ("waiting", "delayed", "blocked"):
                now_us = clock_us()
                to_cancelled(conn, queue, job_id, now_us)
                retain(conn, queue, "cancelled", retention, now_us)
                return "cancelled"
            if state == "active":
                conn.execute(q.REQUEST_CANCEL, (queue, job_id))
            return state

        state = await self._s().write(tx)
        if state is None:
            raise JobNotFound(f"no job {job_id!r} in queue {queue!r}")
        result = JobState(state)
        if result in (JobState.COMPLETED, JobState.FAILED):
            raise InvalidTransition(f"job {job_id!r} is already {state}; it cannot be cancelled")
        return result

    async def retry(self, queue: str, job_ids: Sequence[str]) -> list[bool]:
        def tx(conn: Conn) -> list[bool]:
            done = [
                conn.execute(q.RETRY, (back_seq(conn, queue), queue, job_id)).rowcount == 1
                for job_id in job_ids
            ]
            emit(conn, queue, "waiting", *(j for j, ok in zip(job_ids, done, strict=True) if ok))
            return done

        return await self._s().write(tx) if job_ids else []

    async def promote(self, queue: str, job_id: str) -> bool:
        def tx(conn: Conn) -> bool:
            return conn.execute(q.PROMOTE, (back_seq(conn, queue), queue, job_id)).rowcount == 1

        return await self._s().write(tx)

    async def remove(self, queue: str, job_id: str) -> bool:
        def tx(conn: Conn) -> int:
            row = conn.execute(q.STATE, (queue, job_id)).fetchone()
            if row is None:
                return 0
            if row[0] == "active":
                return -1
            emit(conn, queue, "removed", job_id)
            return delete(conn, queue, [job_id])

        result = await self._s().write(tx)
        if result < 0:
            raise InvalidTransition(f"job {job_id!r} is active; cancel it before removing it")
        return result == 1

    async def clean(self, queue: str, state: JobState, older_than_ms: int, limit: int) -> int:
        if not state.terminal:
            raise InvalidTransition(f"only finished jobs can be cleaned, not {state.value!r}")

        def tx(conn: Conn) -> int:
            cutoff = clock_us() - older_than_ms * 1000
            ids = conn.execute(q.FINISHED_BEFORE, (queue, state.value, cutoff, limit)).fetchall()
            return delete(conn, queue, (r[0] for r in ids))

        return await self._s().write(tx)

    async def drain(self, queue: str, delayed: bool) -> int:
        states = ["waiting", "delayed"] if delayed else ["waiting"]

        def tx(conn: Conn) -> int:
            removed = 0
            for state in states:
                ids = conn.execute(q.IDS_IN_STATE, (queue, state, 5000 - removed)).fetchall()
                removed += delete(conn, queue, (r[0] for r in ids))
            return removed

        total = 0
        while removed := await self._s().write(tx):
            total += removed
        return total

    # -- reads ----------------------------------------------------------------------

    async def get(self, queue: str, job_id: str) -> JobRecord | None:
        return (await self._s().read(lambda conn: records(conn, queue, [job_id])))[0]

    async def get_many(self, queue: str, job_ids: Sequence[str]) -> list[JobRecord | None]:
        return await self._s().read(lambda conn: records(conn, queue, job_ids)) if job_ids else []

    async def job_briefs(self, queue: str, job_ids: Sequence[str]) -> list[JobBrief | None]:
        def read(conn: Conn) -> list[JobBrief | None]:
            found = {}
            for i in range(0, len(job_ids), 500):  # under SQLite's bound on parameters
                chunk = job_ids[i : i + 500]
                sql = q.JOB_BRIEFS.format(ids=",".join("?" * len(chunk)))
                for job_id, state, name, attempts in conn.execute(sql, (queue, *chunk)):
                    found[job_id] = JobBrief(JobState(state), name, attempts)
            return [found.get(job_id) for job_id in job_ids]

        return await self._s().read(read) if job_ids else []

    async def list_jobs(
        self, queue: str, state: JobState, offset: int, limit: int
    ) -> list[JobRecord]:
        sql = q.LIST_IDS.format(order=q.LIST_ORDER[state.value])

        def tx(conn: Conn) -> list[JobRecord | None]:
            ids = [r[0] for r in conn.execute(sql, (queue, state.value, limit, offset))]
            return records(conn, queue, ids)

        return [r for r in await self._s().read(tx) if r is not None]

    async def counts(self, queue: str) -> dict[str, int]:
        def tx(conn: Conn) -> dict[str, int]:
            counts = {state.value: 0 for state in JobState}
            counts.update(dict(conn.execute(q.COUNTS, (queue,)).fetchall()))
            paused = conn.execute(q.IS_PAUSED, (queue,)).fetchone()
            counts["paused"] = int(bool(paused and paused[0]))
            return counts

        return await self._s().read(tx)

    async def queues(self) -> list[str]:
        return await self._s().read(lambda conn: [r[0] for r in conn.execute(q.QUEUES)])

    async def find_job_queue(self, job_id: str) -> str | None:
        def tx(conn: Conn) -> str | None:
            row = conn.execute(q.FIND_JOB_QUEUE, (job_id,)).fetchone()
            return None if row is None else str(row[0])

        return await self._s().read(tx)

    async def wait_finished(self, queue: str, job_id: str, timeout: float) -> JobState | None:
        return await bounded_wait(timeout, self._finished(queue, job_id))

    async def _finished(self, queue: str, job_id: str) -> JobState:
        feed = self._feed
        assert feed is not None, "not connected"
        while True:
            changed = feed.current()
            row = await self._s().read(
                lambda conn: conn.execute(q.STATE, (queue, job_id)).fetchone()
            )
            if row is None:
                raise JobNotFound(f"no job {job_id!r} in queue {queue!r}")
            state = JobState(row[0])
            if state.terminal:
                return state
            await feed.wait(changed, 1.0)

    async def watch_cancellations(
        self, queues: Sequence[str], callback: Callable[[str, str], None]
    ) -> Callable[[], Awaitable[None]]:
        feed = self._feed
        assert feed is not None, "not connected"
        sql = q.CANCEL_REQUESTED.format(marks=",".join("?" * len(queues)))
        told: set[tuple[str, str]] = set()

        async def watch() -> None:
            while True:
                changed = feed.current()
                rows = await self._s().read(lambda conn: conn.execute(sql, list(queues)).fetchall())
                current = {(r[0], r[1]) for r in rows}
                for queue, job_id in current - told:
                    callback(queue, job_id)
                told.intersection_update(current)
                told.update(current)
                await feed.wait(changed, 1.0)

        task = asyncio.create_task(watch(), name="corral-sqlite-cancels")
        self._cancel_watches.add(task)

        async def stop() -> None:
            await _stop_task(task)
            self._cancel_watches.discard(task)

        return stop

    async def events(self, queue: str) -> AsyncGenerator[tuple[str, str], None]:
        feed = self._feed
        assert feed is not None, "not connected"
        start = await self._s().read(lambda conn: int(conn.execute(q.LAST_EVENT).fetchone()[0]))

        async def stream() -> AsyncGenerator[tuple[str, str], None]:
            last = start
            while True:
                changed = feed.current()
                rows = await self._s().read(partial(_events_after, queue=queue, after=last))
                for event_id, event, job_ids in rows:
                    last = event_id
                    for job_id in event_ids(job_ids):
                        yield event, job_id
                if not rows:
                    await feed.wait(changed, 1.0)

        return stream()

    async def time_ms(self) -> int:
        return clock_us() // 1000

    async def unregister_worker(self, worker_id: str) -> None:
        self._claim_events.pop(worker_id, None)
        await super().unregister_worker(worker_id)


async def _stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _events_after(conn: Conn, *, queue: str, after: int) -> list[tuple[int, str, str]]:
    rows: list[tuple[int, str, str]] = conn.execute(q.EVENTS_AFTER, (queue, after)).fetchall()
    return rows
