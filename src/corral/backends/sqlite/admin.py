"""Queue settings, schedules, totals and the worker registry on SQLite.

A mixin of :class:`SQLiteBackend` (split out to keep each module to one concern).
"""

from __future__ import annotations

import sqlite3

from corral.backends.base import (
    DURATION_BUCKETS,
    NewJob,
    QueueLimits,
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
        return QueueStats(
            completed=int(values.get("completed", 0)),
            failed=int(values.get("failed", 0)),
            retried=int(values.get("retried", 0)),
            duration_sum=float(values.get("duration_sum", 0.0)),
            buckets=tuple(int(values.get(f"b{i}", 0)) for i in range(len(DURATION_BUCKETS) + 1)),
        )

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
