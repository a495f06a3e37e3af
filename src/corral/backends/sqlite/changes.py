"""Noticing that the database changed, without a server to push notifications.

Waiters (blocked workers, ``job.result()``, cancellation watchers) sleep on an
event that a poll task fires when anything was committed: by this process (the
store's own write counter) or by another connection (``PRAGMA data_version``,
which reads shared memory and costs microseconds). The poll runs only while
someone waits, every ``interval`` seconds: that interval is the wake-up latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3

from corral.backends.sqlite.store import Store

__all__ = ["ChangeFeed"]


class ChangeFeed:
    """Fires an event on every committed change while anyone is waiting."""

    def __init__(self, store: Store, interval: float = 0.005) -> None:
        self._store = store
        self._interval = interval
        self._event = asyncio.Event()
        self._waiting = 0
        self._task: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()

    def _data_version(self) -> int:
        if self._store.path == ":memory:":
            return 0
        if self._conn is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._conn = sqlite3.connect(self._store.path, isolation_level=None)
        row = self._conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def current(self) -> asyncio.Event:
        """The event the next change will set: take it *before* reading state."""
        return self._event

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Wait until ``event`` (from :meth:`current`) fires or ``timeout`` passes."""
        self._waiting += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="corral-sqlite-changes")
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await event.wait()
        finally:
            self._waiting -= 1

    async def _poll(self) -> None:
        seen = (self._store.version, self._data_version())
        while self._waiting > 0:
            await asyncio.sleep(self._interval)
            now = (self._store.version, self._data_version())
            if now != seen:
                seen = now
                fired, self._event = self._event, asyncio.Event()
                fired.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
