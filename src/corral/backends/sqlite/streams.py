"""Every queue's lifecycle events in one stream on SQLite.

A mixin of :class:`SQLiteBackend`: one task tails the ``events`` table (all queues),
woken by the change feed (see ``changes.py``) instead of polling the table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncGenerator
from functools import partial

from corral.backends.sqlite import queries as q
from corral.backends.sqlite.changes import ChangeFeed
from corral.backends.sqlite.rows import event_ids
from corral.backends.sqlite.store import Store

__all__ = ["SQLiteStreams"]

Conn = sqlite3.Connection


def _last_event(conn: Conn) -> int:
    return int(conn.execute(q.LAST_EVENT).fetchone()[0])


def _all_events_after(conn: Conn, *, after: int) -> list[tuple[int, str, str, str]]:
    rows: list[tuple[int, str, str, str]] = conn.execute(q.ALL_EVENTS_AFTER, (after,)).fetchall()
    return rows


class SQLiteStreams:
    """``all_events`` (see the module docstring); the backend provides the rest."""

    _feed: ChangeFeed | None

    def _s(self) -> Store:
        raise NotImplementedError

    async def all_events(self) -> AsyncGenerator[tuple[str, str, str], None]:
        feed = self._feed
        assert feed is not None, "not connected"
        store = self._s()
        start = await store.read(_last_event)

        async def stream() -> AsyncGenerator[tuple[str, str, str], None]:
            last = start
            while True:
                changed = feed.current()
                rows = await store.read(partial(_all_events_after, after=last))
                for event_id, queue, event, job_ids in rows:
                    last = event_id
                    for job_id in event_ids(job_ids):
                        yield queue, event, job_id
                if not rows:
                    await feed.wait(changed, 1.0)

        return stream()
