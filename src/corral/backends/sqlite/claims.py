"""Claiming on SQLite: the queue's limits, then either the plain priority order or,
when grouped jobs wait, groups (and the ungrouped jobs as one more) taking turns.

Runs inside the caller's ``BEGIN IMMEDIATE`` transaction, like :mod:`rows`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from corral.backends.base import ClaimedJob
from corral.backends.sqlite import queries as q
from corral.backends.sqlite.rows import clock_us, emit, promote_due

__all__ = ["claim"]

Conn = sqlite3.Connection


def claim(
    conn: Conn, queue: str, count: int, lease_ms: int, worker_id: str, prefix: str
) -> tuple[list[ClaimedJob], int | None]:
    """Lease up to ``count`` jobs; returns them and, when none, ms until one may be due."""
    now = clock_us() // 1000
    promote_due(conn, queue, now)
    limits = conn.execute(q.QUEUE_LIMITS, (queue,)).fetchone()
    if limits is None:
        return [], None
    paused, max_active, rate_max, rate_ms, gmax, grate, grate_ms = limits
    if paused:
        return [], None
    room = count
    if max_active is not None:
        room = min(room, max_active - conn.execute(q.ACTIVE_COUNT, (queue,)).fetchone()[0])
        if room <= 0:
            return [], None
    if rate_max is not None and rate_ms is not None:
        conn.execute(q.FORGET_STARTS, (queue, now - rate_ms))
        used, oldest = conn.execute(q.STARTS, (queue,)).fetchone()
        if used >= rate_max:
            return [], max(1, oldest + rate_ms - now)
        room = min(room, rate_max - used)
    lease = (prefix, now, now + lease_ms, worker_id, queue, queue)
    if conn.execute(q.ANY_GROUP_WAITING, (queue,)).fetchone() is None:
        rows = conn.execute(q.CLAIM, (*lease, room)).fetchall()
        rows.sort(key=lambda r: (-r[7], r[8]))
    else:
        rows = _take_turns(conn, queue, room, lease, now, gmax, grate, grate_ms)
    if rate_max is not None:
        conn.executemany(q.ADD_START, [(queue, now)] * len(rows))
    if not rows:
        return [], _next_due(conn, queue, now, grate_ms)
    emit(conn, queue, "active", *(r[0] for r in rows))
    return [
        ClaimedJob(
            id=r[0],
            queue=queue,
            name=r[1],
            data=r[2],
            attempt=r[3],
            token=r[4],
            options=r[5],
            stalls=r[6],
        )
        for r in rows
    ], None


def _take_turns(
    conn: Conn,
    queue: str,
    room: int,
    lease: tuple[Any, ...],
    now: int,
    gmax: int | None,
    grate: int | None,
    grate_ms: int | None,
) -> list[Any]:
    """One job per turn; the lowest turn goes next and moves to the back."""
    if grate is not None and grate_ms is not None:
        conn.execute(q.FORGET_GROUP_STARTS, (queue, now - grate_ms))
    uturn = conn.execute(q.GET_UTURN, (queue,)).fetchone()[0]
    limits = {"queue": queue, "gmax": gmax, "grate": grate}
    rows: list[Any] = []
    for _ in range(room):
        group = conn.execute(q.NEXT_GROUP, limits).fetchone()
        ungrouped = conn.execute(q.ANY_UNGROUPED_WAITING, (queue,)).fetchone() is not None
        if ungrouped and (group is None or uturn <= group[1]):
            row = conn.execute(q.CLAIM, (*lease, 1)).fetchone()
            uturn = conn.execute(q.TAKE_TURN, (queue,)).fetchone()[0]
        elif group is not None:
            row = conn.execute(q.CLAIM_IN_GROUP, (*lease, group[0])).fetchone()
            turn = conn.execute(q.TAKE_TURN, (queue,)).fetchone()[0]
            conn.execute(q.SET_GROUP_TURN, (turn, queue, group[0]))
            if grate is not None:
                conn.execute(q.ADD_GROUP_START, (queue, group[0], now))
        else:
            break
        if row is not None:
            rows.append(row)
    conn.execute(q.SET_UTURN, (uturn, queue))
    return rows


def _next_due(conn: Conn, queue: str, now: int, grate_ms: int | None) -> int | None:
    """Ms until a delayed job is due or a group's rate window frees a start."""
    times = [conn.execute(q.NEXT_DUE, (queue,)).fetchone()[0]]
    if grate_ms is not None:
        oldest = conn.execute(q.OLDEST_GROUP_START, (queue,)).fetchone()[0]
        times.append(None if oldest is None else oldest + grate_ms)
    due = min((t for t in times if t is not None), default=None)
    return None if due is None else max(0, due - now)
