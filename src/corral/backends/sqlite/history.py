"""The outcome history on SQLite: counts per queue and time slot (table ``history``),
added by the complete, fail and reap transactions and read for the dashboard's charts.

:func:`add_history` runs inside a caller's transaction; :class:`SQLiteHistory` is a
mixin of :class:`SQLiteBackend` holding the read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

import orjson

from corral.backends.records import DURATION_BUCKETS, HistoryWindow, check_history_window
from corral.backends.sqlite import queries as q
from corral.backends.sqlite.rows import clock_us
from corral.backends.sqlite.store import Store

__all__ = ["FAILED", "SQLiteHistory", "add_history"]

Conn = sqlite3.Connection

#: The ``kind`` of failures; completions are counted by duration bucket (0, 1, ...).
FAILED = -1
_WIDTH = len(DURATION_BUCKETS) + 2  # failed, then one count per duration bucket
# Slots kept, by step (minutes): two hours of minutes, two days of quarter hours, so
# the latest hour and day can always be read (as on Redis, where keys expire).
_KEEP = {1: 120, 15: 192}


def add_history(conn: Conn, queue: str, now_ms: int, counts: Mapping[int, int]) -> None:
    """Count outcomes (``kind -> n``) in the current minute and quarter hour. The first
    count of a kind in a new minute also trims the queue's slots past keeping, so the
    table stays bounded at a few deletes per queue and minute."""
    minute = now_ms // 60_000
    fresh = False
    for kind, n in counts.items():
        row = conn.execute(q.ADD_HISTORY, (queue, 1, minute, kind, n)).fetchone()
        fresh = fresh or row[0] == n
        conn.execute(q.ADD_HISTORY, (queue, 15, minute // 15, kind, n)).fetchone()
    if fresh:
        for step, keep in _KEEP.items():
            conn.execute(q.TRIM_HISTORY, (queue, step, minute // step - keep))


class SQLiteHistory:
    """The history read (see the module docstring)."""

    def _s(self) -> Store:
        raise NotImplementedError

    async def history(self, queues: Sequence[str], step: int, count: int) -> HistoryWindow:
        check_history_window(step, count)
        last = clock_us() // 1000 // step
        first = last - count + 1
        names = orjson.dumps(list(queues))

        def tx(conn: Conn) -> list[tuple[str, int, int, int]]:
            rows: list[tuple[str, int, int, int]] = conn.execute(
                q.READ_HISTORY, (names, step // 60_000, first)
            ).fetchall()
            return rows

        flat = {queue: [0] * (count * _WIDTH) for queue in queues}
        for queue, slot, kind, n in await self._s().read(tx):
            at = slot - first
            if at < count:
                flat[queue][at * _WIDTH + kind + 1] += n
        return HistoryWindow(
            start=first * step,
            step=step,
            slots={
                queue: [tuple(row[i : i + _WIDTH]) for i in range(0, len(row), _WIDTH)]
                for queue, row in flat.items()
            },
        )
