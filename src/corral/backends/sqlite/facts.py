"""Why a job has not started, on SQLite: :meth:`wait_facts`, one read transaction.

A mixin of :class:`SQLiteBackend`; the same facts as ``redis/lua/facts.lua`` (see
:class:`corral.backends.records.WaitFacts`).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from corral.backends.base import POSITION_BOUND, JobState, RateWindow, WaitFacts
from corral.backends.sqlite import queries as q
from corral.backends.sqlite.rows import clock_us
from corral.backends.sqlite.store import Store
from corral.backends.wire import decode_worker

__all__ = ["SQLiteFacts"]

Conn = sqlite3.Connection

# SQL of this module (read-only; the claim order it mirrors is in claims.py).
_JOB = "SELECT state, run_at, attempts, grp, priority, seq FROM jobs WHERE queue = ? AND id = ?"
_QUEUE = """
SELECT uturn, paused, max_active, rate_max, rate_ms, group_max_active, group_rate_max,
    group_rate_ms
FROM queues WHERE name = ?
"""
_STARTS = "SELECT COUNT(*), MIN(at) FROM starts WHERE queue = ? AND at > ?"
_GROUP_STARTS = "SELECT COUNT(*), MIN(at) FROM group_starts WHERE queue = ? AND grp = ? AND at > ?"
_GROUP = "SELECT active, turn FROM groups WHERE queue = ? AND grp = ?"
# Jobs ahead in the job's own line, counted up to a bound (:name LIMIT), as two range
# scans of its partial index (jobs_waiting, or jobs_group_waiting): higher priorities,
# then its own priority before it.
_LINE = "queue = :queue AND state = 'waiting' AND {grp}"
_AHEAD = """
SELECT (SELECT COUNT(*) FROM (
            SELECT 1 FROM jobs WHERE {line} AND priority > :priority LIMIT :limit))
     + (SELECT COUNT(*) FROM (
            SELECT 1 FROM jobs WHERE {line} AND priority = :priority AND seq < :seq
            LIMIT :limit))
"""
_AHEAD_UNGROUPED = _AHEAD.format(line=_LINE.format(grp="grp IS NULL"))
_AHEAD_IN_GROUP = _AHEAD.format(line=_LINE.format(grp="grp = :grp"))
_UNGROUPED = f"""
SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE {_LINE.format(grp="grp IS NULL")} LIMIT :limit)
"""
# Groups in the rotation: with waiting jobs and not held by their limits (NEXT_GROUP).
_LINES = """
SELECT grp, waiting, turn FROM groups g WHERE queue = :queue AND waiting > 0
    AND (:gmax IS NULL OR active < :gmax)
    AND (:grate IS NULL OR (
        SELECT COUNT(*) FROM group_starts s
        WHERE s.queue = g.queue AND s.grp = g.grp AND s.at > :since
    ) < :grate)
ORDER BY turn LIMIT 1000
"""


def _window(
    conn: Conn, sql: str, args: tuple[Any, ...], rate_max: Any, ms: Any
) -> RateWindow | None:
    if rate_max is None or ms is None:
        return None
    count, oldest = conn.execute(sql, args).fetchone()
    return RateWindow(count, rate_max, ms, None if oldest is None else oldest + ms)


def _facts(conn: Conn, queue: str, job_id: str, bound: int) -> WaitFacts | None:
    now = clock_us() // 1000
    job = conn.execute(_JOB, (queue, job_id)).fetchone()
    if job is None:
        return None
    state, run_at, attempts, grp, priority, seq = job
    row = conn.execute(_QUEUE, (queue,)).fetchone() or (0, 0, None, None, None, None, None, None)
    uturn, paused, max_active, rate_max, rate_ms, gmax, grate, grate_ms = row
    group_active, group_turn = 0, None
    if grp is not None:
        group_active, group_turn = conn.execute(_GROUP, (queue, grp)).fetchone() or (0, None)
    position = None
    if state == "waiting":
        position = min(
            bound, _position(conn, queue, grp, priority, seq, uturn, group_turn, now, row, bound)
        )
    workers = sum(
        queue in decode_worker(info, 0, now).queues
        for info, expires in conn.execute(q.LIVE_WORKERS)
        if expires > now
    )
    rate_args = (queue, now - (rate_ms or 0))
    return WaitFacts(
        queue=queue,
        job_id=job_id,
        state=JobState(state),
        now=now,
        run_at=run_at,
        attempts=attempts,
        group=grp,
        paused=bool(paused),
        active=conn.execute(q.ACTIVE_COUNT, (queue,)).fetchone()[0],
        max_active=max_active,
        rate=_window(conn, _STARTS, rate_args, rate_max, rate_ms),
        group_active=group_active,
        group_max_active=gmax if grp is not None else None,
        group_rate=None
        if grp is None
        else _window(conn, _GROUP_STARTS, (queue, grp, now - (grate_ms or 0)), grate, grate_ms),
        workers=workers,
        position=position,
        position_at_least=position == bound,
    )


def _position(
    conn: Conn,
    queue: str,
    grp: str | None,
    priority: int,
    seq: int,
    uturn: int,
    group_turn: int | None,
    now: int,
    limits: tuple[Any, ...],
    bound: int,
) -> int:
    """Jobs that would be claimed before this one (see WaitFacts.position)."""
    place = {"queue": queue, "grp": grp, "priority": priority, "seq": seq}
    sql = _AHEAD_UNGROUPED if grp is None else _AHEAD_IN_GROUP
    rank: int = conn.execute(sql, place | {"limit": bound}).fetchone()[0]
    if conn.execute(q.ANY_GROUP_WAITING, (queue,)).fetchone() is None:
        return rank
    # Lines take turns, one job a turn, lowest turn first (ungrouped first on a tie):
    # each other line gives up to `rank` jobs ahead of it, one more when it goes first.
    *_, gmax, grate, grate_ms = limits
    since = now - (grate_ms or 0)
    lines = conn.execute(
        _LINES, {"queue": queue, "gmax": gmax, "grate": grate, "since": since}
    ).fetchall()
    in_line = {g for g, _, _ in lines}
    mine: float = uturn
    if grp is not None:
        mine = group_turn if group_turn is not None and grp in in_line else float("inf")
    position = rank
    if grp is not None:
        first = rank + (uturn <= mine)
        position += conn.execute(_UNGROUPED, {"queue": queue, "limit": first}).fetchone()[0]
    for g, waiting, turn in lines:
        if g != grp:
            position += min(waiting, rank + (turn < mine))
    return position


class SQLiteFacts:
    """:meth:`wait_facts` (see the module docstring)."""

    #: How far the place in line is counted (see WaitFacts.position_at_least).
    position_bound = POSITION_BOUND

    def _s(self) -> Store:
        raise NotImplementedError

    async def wait_facts(self, queue: str, job_id: str) -> WaitFacts | None:
        bound = self.position_bound
        return await self._s().read(lambda conn: _facts(conn, queue, job_id, bound))
