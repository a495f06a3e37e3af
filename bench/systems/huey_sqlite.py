"""Huey's SQLite storage (an embedded peer, scenarios k, l, m):
``huey_consumer systems.huey_sqlite.huey -k thread -w 8``, one per process, on one file.

The file is ``BENCH_SQLITE_DB`` (set by the adapter for its workers). Huey's storage
opens it in WAL mode; ``synchronous`` is set to NORMAL as Corral's SQLite backend
does (Huey leaves SQLite's FULL unless told ``fsync``, which only knows FULL or OFF).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

from huey import SqliteHuey
from huey.storage import SqliteStorage

from systems.base import System
from systems.common import cpu, noop


class NormalSyncStorage(SqliteStorage):  # type: ignore[misc]
    """Huey's SqliteStorage with ``PRAGMA synchronous = NORMAL`` (as Corral's)."""

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("pragma synchronous = NORMAL")
        return conn


def make_huey(path: str) -> tuple[Any, dict[str, Any]]:
    huey = SqliteHuey("bench", filename=path, storage_class=NormalSyncStorage)

    @huey.task(name="noop")
    def empty(i: int) -> None:
        noop()

    @huey.task(name="cpu")
    def small_cpu(i: int) -> None:
        cpu()

    return huey, {"noop": empty, "cpu": small_cpu}


# What the consumer processes load.
huey, _ = make_huey(os.environ.get("BENCH_SQLITE_DB", "/tmp/corral-bench-huey.db"))


class HueySQLite(System):
    id = "huey-sqlite"
    label = "Huey (SQLite)"
    package = "huey"
    bulk_api = "none: a loop of task calls (one INSERT transaction each)"
    only = "klm"
    embedded = True
    threads = 8
    settings: ClassVar[dict[str, Any]] = {
        "worker": "huey_consumer systems.huey_sqlite.huey -k thread -w 8 -q (one command "
        "per process)",
        "storage": "SqliteHuey: one file, WAL, synchronous NORMAL (set as Corral's), "
        "busy timeout 5 s (default); a dequeue is one BEGIN EXCLUSIVE (select + delete)",
        "event loop": "none (sync)",
        "concurrency": "8 threads per process",
        "task": "def (sync)",
        "acks": "none: a job is deleted from the file when dequeued (at most once)",
        "retention": "return value None: nothing stored",
    }

    def db_path(self) -> Path:
        return self.ctx.work_dir / "huey-bench.db"

    async def open(self) -> None:
        self.huey, self.tasks = make_huey(str(self.db_path()))

    async def reset(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            self.db_path().with_name(self.db_path().name + suffix).unlink(missing_ok=True)
        self.huey, self.tasks = make_huey(str(self.db_path()))

    async def one(self, i: int, kind: str) -> None:
        self.tasks[kind](i)

    async def bulk(self, n: int, kind: str = "noop") -> None:
        task = self.tasks[kind]
        for i in range(n):
            task(i)

    def worker_env(self) -> dict[str, str]:
        return {"BENCH_SQLITE_DB": str(self.db_path())}

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [self.tool("huey_consumer"), "systems.huey_sqlite.huey", "-k", "thread"]
        return [[*cmd, "-w", str(self.threads), "-q"]] * processes
