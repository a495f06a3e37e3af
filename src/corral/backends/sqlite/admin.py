"""Queue settings, schedules, totals, the queue listing and the worker registry on
SQLite.

A mixin of :class:`SQLiteBackend` (split out to keep each module to one concern).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Any

from corral.backends.base import (
    DURATION_BUCKETS,
    JobState,
    NewJob,
    QueueLimits,
    QueueOverview,
    QueueStats,
    ScheduleRecord,
    WorkerInfo,
)
from corral.backends.sqlite import queries as q
from corral.backends.sqlite.rows import clock_us, insert_jobs
from corral.backends.sqlite.store import Store
from corral.backends.wire import decode_worker, encode_worker

__all__ = ["SQLiteAdmin"]

Conn = sqlite3.Connection


def _stats(values: dict[str, Any]) -> QueueStats:
    return QueueStats(
        completed=int(values.get("completed", 0)),
        failed=int(values.get("failed", 0)),
        retried=int(values.get("retried", 0)),
        duration_sum=float(values.get("duration_sum", 0.0)),
        buckets=tuple(int(values.get(f"b{i}", 0)) for i in range(len(DURATION_BUCKETS) + 1)),
    )


def _listing(conn: Conn) -> tuple[list[QueueOverview], list[str]]:
    """Every queue's overview, and the queues nothing holds (see ``overview``)."""
    now = clock_us() // 1000
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {s.value: 0 for s in JobState})
    for queue, state, n in conn.execute(q.ALL_COUNTS):
        counts[queue][state] = n
    values: dict[str, dict[str, Any]] = defaultdict(dict)
    for queue, name, value in conn.execute(q.ALL_STATS):
        values[queue][name] = value
    scheduled = {row[0] for row in conn.execute(q.SCHEDULED_QUEUES)}
    served = {
        queue
        for info, expires in conn.execute(q.LIVE_WORKERS)
        if expires > now
        for queue in decode_worker(info, 0, now).queues
    }
    listed: list[QueueOverview] = []
    unused: list[str] = []
    for name, paused, limited in conn.execute(q.ALL_QUEUES):
        jobs = counts[name]
        listed.append(
            QueueOverview(name, jobs | {"paused": int(bool(paused))}, _stats(values[name]))
        )
        if not (paused or limited or any(jobs.values()) or name in scheduled or name in served):
            unused.append(name)
    return listed, unused


def _forget(conn: Conn, names: list[str]) -> set[str]:
    """Delete queues nothing holds (checked again here, in the write transaction) and
    what is left of them; returns those forgotten."""
    gone = {name for name in names if conn.execute(q.FORGET_QUEUE, {"q": name}).rowcount}
    for sql in q.FORGET_LEFTOVERS:
        conn.executemany(sql, [(name,) for name in gone])
    return gone


class SQLiteAdmin:
    """Settings, schedules, stats and workers (see the module docstring)."""

    def _s(self) -> Store:
        raise NotImplementedError

    async def set_paused(self, queue: str, paused: bool) -> None:
        def tx(conn: Conn) -> None:
            conn.execute(q.REGISTER_QUEUE, (queue,))
            conn.execute(q.SET_PAUSED, (int(paused), queue))

        await self._s().write(tx)

    async def set_limits(self, queue: str, limits: QueueLimits) -> None:
        def tx(conn: Conn) -> None:
            conn.execute(q.REGISTER_QUEUE, (queue,))
            conn.execute(q.SET_LIMITS, (*limits.stored(), queue))

        await self._s().write(tx)

    async def limits(self, queue: str) -> QueueLimits:
        row = await self._s().read(lambda conn: conn.execute(q.QUEUE_LIMITS, (queue,)).fetchone())
        if row is None:
            return QueueLimits()
        return QueueLimits.from_stored(row[1:])

    async def stats(self, queue: str) -> QueueStats:
        values = dict(await self._s().read(lambda conn: conn.execute(q.STATS, (queue,)).fetchall()))
        return _stats(values)

    async def overview(self) -> list[QueueOverview]:
        # One read transaction, a fixed number of statements whatever the number of
        # queues; a write transaction only when there is a queue to forget.
        listed, unused = await self._s().read(_listing)
        if not unused:
            return listed
        gone = await self._s().write(lambda conn: _forget(conn, unused))
        return [o for o in listed if o.name not in gone]

    async def upsert_schedule(
        self, queue: str, name: str, definition: bytes, next_at: int | None, *, keep: bool
    ) -> bool:
        def tx(conn: Conn) -> bool:
            row = conn.execute(q.GET_SCHEDULE_DEF, (queue, name)).fetchone()
            if keep and row is not None and bytes(row[0]) == definition:
                return False
            conn.execute(q.REGISTER_QUEUE, (queue,))
            conn.execute(q.PUT_SCHEDULE, (queue, name, definition, next_at))
            return True

        return await self._s().write(tx)

    async def remove_schedule(self, queue: str, name: str) -> bool:
        def tx(conn: Conn) -> bool:
            return conn.execute(q.DELETE_SCHEDULE, (queue, name)).rowcount == 1

        return await self._s().write(tx)

    async def schedules(self, queue: str) -> list[ScheduleRecord]:
        def tx(conn: Conn) -> list[ScheduleRecord]:
            return [
                ScheduleRecord(name, bytes(definition), next_at, last_at)
                for name, definition, next_at, last_at in conn.execute(q.LIST_SCHEDULES, (queue,))
            ]

        return await self._s().read(tx)

    async def fire_schedule(
        self, queue: str, name: str, tick: int, next_at: int | None, job: NewJob | None
    ) -> bool:
        def tx(conn: Conn) -> bool:
            fired = tick if job is not None else None
            if conn.execute(q.FIRE_SCHEDULE, (next_at, fired, queue, name, tick)).rowcount != 1:
                return False
            if job is not None:
                insert_jobs(conn, queue=queue, jobs=[job])
            return True

        return await self._s().write(tx)

    async def register_worker(self, info: WorkerInfo, ttl_ms: int) -> None:
        payload = encode_worker(info, ttl_ms)

        def tx(conn: Conn) -> None:
            conn.execute(q.UPSERT_WORKER, (info.id, payload, clock_us() // 1000 + ttl_ms))

        await self._s().write(tx)

    async def unregister_worker(self, worker_id: str) -> None:
        await self._s().write(lambda conn: conn.execute(q.DELETE_WORKER, (worker_id,)))

    async def workers(self) -> list[WorkerInfo]:
        def tx(conn: Conn) -> list[WorkerInfo]:
            now = clock_us() // 1000
            conn.execute(q.EXPIRE_WORKERS, (now,))
            return [
                decode_worker(info, expires - now, now)
                for info, expires in conn.execute(q.LIVE_WORKERS)
            ]

        return await self._s().write(tx)
