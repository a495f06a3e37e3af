"""One SQLite connection, its thread, and transactions that retry when busy.

sqlite3 calls block, so every transaction runs on one dedicated thread per store
(the connection is never used from two threads at once). Writers take the write
lock up front (``BEGIN IMMEDIATE``) so two workers can never both read a job as
waiting and claim it; contention waits on the busy timeout and then retries with
backoff, so "database is locked" never reaches user code while the lock is
merely contended.

Corral's writers also queue for the write lock on an advisory lock file beside the
database (``<file>-corral-lock``, ``flock``) before ``BEGIN IMMEDIATE``. SQLite's
busy handler polls: a writer that finds the lock taken sleeps 1, 2, 5, 10... ms,
so with several processes on one file the lock sits free while every waiter
sleeps, and throughput falls as processes are added. The kernel hands a released
``flock`` to a waiter at once. It only orders Corral's own writers; SQLite's lock
still guards the data, the busy handling stays for other writers (and for a file
where the lock file cannot be made), and a crashed process's ``flock`` is released
by the kernel with its descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from corral.backends.sqlite.flows import settle
from corral.backends.sqlite.migrations import migrate
from corral.errors import BackendError, ConfigurationError, ConnectionFailed

_flock_nogil: Any = None
if sys.platform != "win32":
    import ctypes
    import errno
    import fcntl

    # libc's flock called without releasing the GIL: an uncontended lock or unlock is
    # one quick system call, and releasing the GIL for it would let the event loop's
    # thread take it and keep it for up to the switch interval (5 ms) per transaction.
    # Only a lock that must wait goes through fcntl.flock, which releases the GIL.
    try:
        _flock_nogil = ctypes.PyDLL(None, use_errno=True).flock
        _flock_nogil.argtypes = (ctypes.c_int, ctypes.c_int)
        _flock_nogil.restype = ctypes.c_int
    except (OSError, AttributeError):
        _flock_nogil = None


def _lock(fd: int) -> None:
    """Take the advisory write lock: at once if it is free, else wait for it."""
    if _flock_nogil is not None:
        if _flock_nogil(fd, fcntl.LOCK_EX | fcntl.LOCK_NB) == 0:
            return
        if ctypes.get_errno() not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
            raise OSError(ctypes.get_errno(), "flock")
    fcntl.flock(fd, fcntl.LOCK_EX)


def _unlock(fd: int) -> None:
    if _flock_nogil is None or _flock_nogil(fd, fcntl.LOCK_UN) != 0:
        fcntl.flock(fd, fcntl.LOCK_UN)


__all__ = ["Store", "open_store", "path_from_url"]

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 5000
_GIVE_UP_AFTER = 60.0
_memory_stores: dict[str, Store] = {}
_memory_lock = threading.Lock()
# Connections inherited across fork(): kept referenced and never closed, because
# closing one in the child would release the parent's POSIX locks on the file.
_inherited: list[sqlite3.Connection] = []


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Store:
    """A database file (or shared in-memory database) and its worker thread."""

    def __init__(self, path: str, *, durable: bool = False) -> None:
        self.path = path
        self.durable = durable
        self._memory = path == ":memory:"
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="corral-sqlite")
        self._conn: sqlite3.Connection | None = None
        # The advisory write lock's descriptor (see the module docstring); None for
        # :memory: or when the lock file cannot be opened.
        self._lock_fd: int | None = None
        self._pid = os.getpid()
        self._users = 0
        #: Grows with every write transaction this store commits (change detection).
        self.version = 0

    def _after_fork(self) -> None:
        """In a forked child: drop the parent's thread and connection, unused."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="corral-sqlite")
        if self._conn is not None:
            _inherited.append(self._conn)
            self._conn = None
        # A forked descriptor shares the parent's lock: this process needs its own.
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if not self._memory:
                # Switching a fresh file to WAL takes an exclusive lock and SQLite
                # answers BUSY at once, without the busy handler: retry it ourselves.
                self._with_busy_retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            # WAL + NORMAL survives a process crash; FULL also survives power loss.
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys = OFF")
            self._with_busy_retry(lambda: migrate(conn))
        except sqlite3.Error as exc:
            raise ConnectionFailed(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        self._conn = conn
        if not self._memory and self._lock_fd is None and sys.platform != "win32":
            try:
                self._lock_fd = os.open(f"{self.path}-corral-lock", os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                self._lock_fd = None  # no queue: SQLite's busy handling alone
        return conn

    def _with_busy_retry(self, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + _GIVE_UP_AFTER
        delay = 0.005
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.2)

    def _transaction(self, fn: Callable[[sqlite3.Connection], T], write: bool) -> T:
        conn = self._connect()

        def attempt() -> T:
            if write and self._lock_fd is not None and sys.platform != "win32":
                _lock(self._lock_fd)
                try:
                    return run()
                finally:
                    _unlock(self._lock_fd)
            return run()

        def run() -> T:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            before = conn.total_changes
            try:
                result = fn(conn)
                if write and conn.total_changes != before:
                    settle(conn)  # flow outcomes noted by this transaction, before it commits
                conn.execute("COMMIT")
                # Only a write that changed rows wakes this process's waiters: an
                # empty claim must not wake the worker that made it.
                if write and conn.total_changes != before:
                    self.version += 1
                return result
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        try:
            return self._with_busy_retry(attempt)
        except sqlite3.Error as exc:
            raise BackendError(f"SQLite error on {self.path!r}: {exc}") from exc

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one ``BEGIN IMMEDIATE`` transaction."""
        self._after_fork()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._transaction, fn, True)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one read transaction (a consistent snapshot)."""
        self._after_fork()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._transaction, fn, False)

    async def open(self) -> None:
        self._after_fork()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._connect)

    def acquire(self) -> None:
        self._users += 1

    async def release(self) -> None:
        """Drop one user; the last one closes the connection (not for :memory:,
        which would lose the data)."""
        self._users -= 1
        if self._users > 0 or self._memory:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._close)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def open_store(path: str, *, durable: bool = False) -> Store:
    """A store for ``path``; every backend of this process shares one in-memory db."""
    if path != ":memory:":
        return Store(path, durable=durable)
    with _memory_lock:
        store = _memory_stores.get(path)
        if store is None:
            store = _memory_stores[path] = Store(path)
        return store


def path_from_url(url: str) -> str:
    """``sqlite:///corral.db`` -> ``corral.db``; ``sqlite:////abs/x.db`` -> ``/abs/x.db``;
    ``sqlite:///:memory:`` -> ``:memory:``."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc:
        raise ConfigurationError(
            f"invalid SQLite URL {url!r}: use sqlite:///relative.db, sqlite:////absolute.db "
            "or sqlite:///:memory:"
        )
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not path:
        raise ConfigurationError(f"SQLite URL {url!r} names no file")
    return path
