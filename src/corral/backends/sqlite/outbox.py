"""The notification outbox on SQLite: table ``outbox``, filled by the ``jobs_moved``
trigger (migration 10's ``jobs_outbox``, merged into it by 15) in the transaction that
ends a job; endpoint states and windowed counters for deliveries.

A mixin of :class:`SQLiteBackend`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from corral.backends.records import COUNTER_KEPT_MS, OutboxEntry
from corral.backends.sqlite import queries as q
from corral.backends.sqlite.rows import clock_us
from corral.backends.sqlite.store import Store

__all__ = ["SQLiteOutbox"]

Conn = sqlite3.Connection


def _blob(value: bytes | str | None) -> bytes | None:
    if value is None:
        return None
    return value.encode() if isinstance(value, str) else bytes(value)


class SQLiteOutbox:
    """Taking and acknowledging outbox rows; endpoint states and counters."""

    def _s(self) -> Store:
        raise NotImplementedError

    async def take_outbox(self, queue: str, limit: int, hold_ms: int) -> list[OutboxEntry]:
        # Relays look often: a read first, so an empty outbox takes no write lock.
        due = (queue, clock_us() // 1000)
        if await self._s().read(lambda c: c.execute(q.OUTBOX_DUE, due).fetchone()) is None:
            return []

        def tx(conn: Conn) -> list[OutboxEntry]:
            now = clock_us() // 1000
            rows = conn.execute(
                q.TAKE_OUTBOX, {"hold": now + hold_ms, "q": queue, "now": now, "n": limit}
            ).fetchall()
            return [
                OutboxEntry(
                    ref=str(row[0]).encode(),
                    queue=queue,
                    job_id=row[1],
                    event=row[2],
                    task=row[3],
                    attempt=row[4],
                    created_at=row[5],
                    started_at=row[6],
                    finished_at=row[7],
                    result=_blob(row[8]),
                    error=_blob(row[9]),
                    options=_blob(row[10]) or b"",
                )
                for row in sorted(rows)
            ]

        return await self._s().write(tx)

    async def ack_outbox(self, queue: str, refs: Sequence[bytes]) -> None:
        ids = [(queue, int(ref)) for ref in refs if ref.isdigit()]
        if ids:
            await self._s().write(lambda conn: conn.executemany(q.ACK_OUTBOX, ids))

    async def outbox_size(self, queue: str) -> int:
        row = await self._s().read(lambda c: c.execute(q.OUTBOX_SIZE, (queue,)).fetchone())
        return int(row[0])

    async def bump_counter(self, name: str, window_ms: int) -> tuple[int, int]:
        def tx(conn: Conn) -> tuple[int, int]:
            now = clock_us() // 1000
            conn.execute(q.FORGET_COUNTERS, (name, now - max(window_ms, COUNTER_KEPT_MS)))
            # The window the first bump after the last one's end opened, or a new one.
            end = conn.execute(q.OPEN_WINDOW, (name, now)).fetchone()[0] or now + window_ms
            return int(conn.execute(q.BUMP_COUNTER, (name, end)).fetchone()[0]), end

        return await self._s().write(tx)

    async def read_counter(self, name: str, window_end: int) -> int:
        row = await self._s().read(
            lambda c: c.execute(q.READ_COUNTER, (name, window_end)).fetchone()
        )
        return 0 if row is None else int(row[0])

    async def set_endpoint(self, key: str, state: bytes | None) -> None:
        if state is None:
            await self._s().write(lambda conn: conn.execute(q.DROP_ENDPOINT, (key,)))
        else:
            await self._s().write(lambda conn: conn.execute(q.SET_ENDPOINT, (key, state)))

    async def endpoints(self) -> dict[str, bytes]:
        rows = await self._s().read(lambda c: c.execute(q.ENDPOINTS).fetchall())
        return {key: bytes(state) for key, state in rows}
