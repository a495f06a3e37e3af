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
import time

from corral.backends.sqlite.store import Store

__all__ = ["ChangeFeed"]


class ChangeFeed:
    """Fires an event on every committed change while anyone is waiting.

    No change may slip between a caller's read and its wait: :meth:`current`
    starts the poll (which lingers ``linger`` seconds after the last call), and the
    baseline only ever moves together with a fire, so a change after ``current()``
    always sets the event it returned.
    """

    def __init__(self, store: Store, interval: float = 0.005, linger: float = 1.0) -> None:
        self._store = store
        self._interval = interval
        self._linger = linger
        self._event = asyncio.Event()
        self._waiting = 0
        self._wanted_at = 0.0
        self._seen: tuple[int, int] = (0, 0)
        self._task: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()

    def _snapshot(self) -> tuple[int, int]:
        if self._store.path == ":memory:":
            return (self._store.version, 0)
        if self._conn is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._conn = sqlite3.connect(self._store.path, isolation_level=None)
        row = self._conn.execute("PRAGMA data_version").fetchone()
        return (self._store.version, int(row[0]))

    def _check(self) -> None:
        # The only place ``_seen`` moves, and always together with a fire: a change
        # is never absorbed into the baseline without waking its waiters.
        now = self._snapshot()
        if now != self._seen:
            self._seen = now
            fired, self._event = self._event, asyncio.Event()
            fired.set()

    def _ensure_polling(self) -> None:
        if self._task is None or self._task.done():
            self._check()
            self._task = asyncio.create_task(self._poll(), name="corral-sqlite-changes")

    def current(self) -> asyncio.Event:
        """The event the next change will set: take it *before* reading state."""
        self._wanted_at = time.monotonic()
        self._ensure_polling()
        return self._event

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Wait until ``event`` (from :meth:`current`) fires or ``timeout`` passes."""
        self._waiting += 1
        self._ensure_polling()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await event.wait()
        finally:
            self._waiting -= 1

    async def _poll(self) -> None:
        while self._waiting > 0 or time.monotonic() - self._wanted_at < self._linger:
            await asyncio.sleep(self._interval)
            self._check()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
