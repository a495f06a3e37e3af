"""The ledger: an SQLite file, separate from Corral, that records what really happened.

Tasks append one row per execution when they start and fill in ``finished`` and
``outcome`` when their body ends (``ok`` = returned a result, ``raised`` = a planned
failure, ``interrupted`` = stopped by the worker). Producers record each enqueue that
was acknowledged; the harness records every fault it injects or observes (the pid of a
killed or crashed worker, a Redis kill, a proxy fault).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Execution", "Ledger", "TaskLedger", "task_ledger"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    exec_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, task TEXT, attempt INT, stalls INT,
    pid INT, started REAL, finished REAL, outcome TEXT);
CREATE INDEX IF NOT EXISTS executions_job ON executions (job_id);
CREATE TABLE IF NOT EXISTS enqueued (job_id TEXT PRIMARY KEY, queue TEXT, at REAL);
CREATE TABLE IF NOT EXISTS faults (kind TEXT, pid INT, at REAL, detail TEXT);
CREATE TABLE IF NOT EXISTS producer_errors (kind TEXT, at REAL, message TEXT);
"""


def _connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=60, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 60000")
    conn.execute("PRAGMA journal_mode = WAL")
    # A killed process loses nothing that was written (the page cache survives it);
    # only a machine crash could, and the suite never causes one.
    conn.execute("PRAGMA synchronous = OFF")
    return conn


@dataclass(frozen=True, slots=True)
class Execution:
    exec_id: str
    job_id: str
    task: str
    attempt: int
    stalls: int
    pid: int
    started: float
    finished: float | None
    outcome: str | None


class TaskLedger:
    """The writer used inside worker processes: one connection per thread and pid."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = self._local.conn = _connect(self.path)
            self._local.pid = os.getpid()
        return conn

    def begin(self, job_id: str, task: str, attempt: int, stalls: int) -> str:
        exec_id = uuid.uuid4().hex
        self._conn().execute(
            "INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            (exec_id, job_id, task, attempt, stalls, os.getpid(), time.time()),
        )
        return exec_id

    def finish(self, exec_id: str, outcome: str) -> None:
        self._conn().execute(
            "UPDATE executions SET finished = ?, outcome = ? WHERE exec_id = ?",
            (time.time(), outcome, exec_id),
        )


_task_ledger: TaskLedger | None = None


def task_ledger() -> TaskLedger:
    """The ledger named by ``CHAOS_LEDGER`` (set by the harness for every worker)."""
    global _task_ledger
    if _task_ledger is None:
        path = os.environ.get("CHAOS_LEDGER")
        if not path:
            raise RuntimeError("CHAOS_LEDGER is not set: chaos tasks run under the harness")
        _task_ledger = TaskLedger(path)
    return _task_ledger


class Ledger:
    """The harness's side: creates the file, records enqueues and faults, reads back."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = _connect(self.path)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def enqueued(self, job_ids: list[str], queue: str) -> None:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO enqueued VALUES (?, ?, ?)",
                [(job_id, queue, now) for job_id in job_ids],
            )
            self._db.execute("COMMIT")

    def fault(self, kind: str, pid: int = 0, detail: str = "") -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO faults VALUES (?, ?, ?, ?)", (kind, pid, time.time(), detail)
            )

    def producer_error(self, kind: str, message: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO producer_errors VALUES (?, ?, ?)", (kind, time.time(), message)
            )

    # -- reading back -----------------------------------------------------------------

    def _all(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def enqueued_ids(self) -> list[str]:
        return [r[0] for r in self._all("SELECT job_id FROM enqueued ORDER BY at")]

    def executions(self) -> dict[str, list[Execution]]:
        by_job: dict[str, list[Execution]] = defaultdict(list)
        for row in self._all("SELECT * FROM executions ORDER BY started"):
            by_job[row[1]].append(Execution(*row))
        return by_job

    def faults(self, *kinds: str) -> list[tuple[str, int, float, str]]:
        rows = self._all("SELECT kind, pid, at, detail FROM faults ORDER BY at")
        return [r for r in rows if not kinds or r[0] in kinds]

    def crashed_pids(self) -> set[int]:
        """Workers that died without a clean shutdown (SIGKILL, injected crash, exit)."""
        kinds = ("sigkill", "crash", "exit")
        return {pid for kind, pid, _, _ in self.faults(*kinds) if pid}

    def producer_errors(self) -> list[tuple[str, float, str]]:
        return self._all("SELECT kind, at, message FROM producer_errors ORDER BY at")

    def count(self, sql: str, *args: object) -> int:
        return int(self._all(sql, *args)[0][0])
