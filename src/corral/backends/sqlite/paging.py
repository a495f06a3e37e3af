"""Keyset paging and bounded scans over one state of a queue on SQLite.

A mixin of :class:`SQLiteBackend`: each page is one read transaction (a snapshot),
each part of a listing order one index range scan (migration 6).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from corral.backends.paging import PageSlice, Position, ScansPages, check_position
from corral.backends.records import JobState
from corral.backends.sqlite import queries as q
from corral.backends.sqlite.rows import records
from corral.backends.sqlite.store import Store

__all__ = ["SQLitePaging"]

Conn = sqlite3.Connection

_KEYED = (int, str)
_WAITING = (int, int, int, str)  # priority, grouped (0/1), seq, id


def _line(conn: Conn, queue: str, after: Position | None, n: int) -> list[Position]:
    """The next ``n`` waiting rows after ``after``, in claim order: higher priority
    first, ungrouped before grouped, then line order (as :meth:`list_jobs`)."""
    w = q.PAGE_WHERE
    parts: list[tuple[str, str, tuple[Any, ...]]]  # (query, where, args)
    if after is None:
        parts = [(q.PAGE_UNGROUPED, w["all"], ()), (q.PAGE_GROUPED, w["all"], ())]
    else:
        priority, grouped, seq, job_id = after
        if grouped:
            parts = [
                (q.PAGE_GROUPED, w["same_after_id"], (priority, seq, job_id)),
                (q.PAGE_UNGROUPED, w["lower"], (priority,)),
                (q.PAGE_GROUPED, w["lower"], (priority,)),
            ]
        else:
            parts = [
                (q.PAGE_UNGROUPED, w["same_after"], (priority, seq)),
                (q.PAGE_UNGROUPED, w["lower"], (priority,)),
                (q.PAGE_GROUPED, w["upto"], (priority,)),
            ]
    rows: list[tuple[int, int, int, str]] = []
    for sql, where, args in parts:
        grouped_part = int(sql is q.PAGE_GROUPED)
        for job_id, priority, seq in conn.execute(sql.format(where=where), (queue, *args, n)):
            rows.append((priority, grouped_part, seq, job_id))
    # Sort key of the line: (-priority, grouped, seq, id); the parts overlap in it.
    rows.sort(key=lambda r: (-r[0], r[1], r[2], r[3]))
    return list(rows[:n])


def _keyed(
    conn: Conn, queue: str, state: JobState, after: Position | None, n: int
) -> list[Position]:
    kind = (
        state.value
        if state in (JobState.DELAYED, JobState.ACTIVE, JobState.BLOCKED)
        else "finished"
    )
    args: tuple[Any, ...]
    if after is None:
        sql, args = q.PAGE_FIRST[kind], (queue, n)
    else:
        sql, args = q.PAGE_AFTER[kind], (queue, after[0], after[1], n)
    return [(value, job_id) for job_id, value in conn.execute(sql.format(state=state.value), args)]


class SQLitePaging(ScansPages):
    """Paging and scans (see the module docstring)."""

    def _s(self) -> Store:
        raise NotImplementedError

    async def page_jobs(
        self, queue: str, state: JobState, after: Position | None, limit: int
    ) -> PageSlice:
        waiting = state is JobState.WAITING
        if after is not None:
            check_position(after, _WAITING if waiting else _KEYED, state)

        def tx(conn: Conn) -> PageSlice:
            if waiting:
                positions = _line(conn, queue, after, limit + 1)
            else:
                positions = _keyed(conn, queue, state, after, limit + 1)
            more = len(positions) > limit
            positions = positions[:limit]
            found = records(conn, queue, [str(p[-1]) for p in positions])
            kept = [(r, p) for r, p in zip(found, positions, strict=True) if r is not None]
            return PageSlice(
                [r for r, _ in kept],
                [p for _, p in kept],
                positions[-1] if more else None,
                len(positions),
            )

        return await self._s().read(tx)
