"""Numbered schema migrations; the database records the version it is at.

Each entry moves the schema from version N-1 to N and runs in the same
transaction as the version bump, so a crash mid-migration leaves the old schema.
Never edit a shipped migration: append a new one.
"""

from __future__ import annotations

import sqlite3

from corral.errors import ConfigurationError

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS: list[str] = [
    # 1: jobs, their errors and logs, queues, workers.
    """
    CREATE TABLE jobs (
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        data BLOB NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        seq INTEGER NOT NULL,
        options BLOB NOT NULL DEFAULT x'',
        attempts INTEGER NOT NULL DEFAULT 0,
        stalls INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        finished_us INTEGER,
        run_at INTEGER,
        lease_until INTEGER,
        token TEXT,
        worker TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        progress BLOB,
        result BLOB,
        PRIMARY KEY (queue, id)
    );
    CREATE INDEX jobs_waiting ON jobs (queue, priority DESC, seq) WHERE state = 'waiting';
    CREATE INDEX jobs_delayed ON jobs (queue, run_at) WHERE state = 'delayed';
    CREATE INDEX jobs_active ON jobs (queue, lease_until) WHERE state = 'active';
    CREATE INDEX jobs_finished ON jobs (queue, state, finished_us)
        WHERE state IN ('completed', 'failed', 'cancelled');
    CREATE TABLE job_errors (queue TEXT NOT NULL, job_id TEXT NOT NULL, error BLOB NOT NULL);
    CREATE INDEX job_errors_job ON job_errors (queue, job_id);
    CREATE TABLE job_logs (queue TEXT NOT NULL, job_id TEXT NOT NULL, line TEXT NOT NULL);
    CREATE INDEX job_logs_job ON job_logs (queue, job_id);
    CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        paused INTEGER NOT NULL DEFAULT 0,
        seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE workers (id TEXT PRIMARY KEY, info BLOB NOT NULL, expires_at INTEGER NOT NULL);
    """,
    # 2: lifecycle events (a bounded log the event streams tail) and queue totals.
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        job_id TEXT NOT NULL,
        event TEXT NOT NULL
    );
    CREATE INDEX events_queue ON events (queue, id);
    CREATE TABLE stats (
        queue TEXT NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (queue, name)
    );
    """,
    # 3: schedules (cron / interval), one pending tick each.
    """
    CREATE TABLE schedules (
        queue TEXT NOT NULL,
        name TEXT NOT NULL,
        definition BLOB NOT NULL,
        next_at INTEGER,
        last_at INTEGER,
        PRIMARY KEY (queue, name)
    );
    """,
    # 4: flow control: per-queue limits and the log of recent starts.
    """
    ALTER TABLE queues ADD COLUMN max_active INTEGER;
    ALTER TABLE queues ADD COLUMN rate_max INTEGER;
    ALTER TABLE queues ADD COLUMN rate_ms INTEGER;
    CREATE TABLE starts (queue TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE INDEX starts_queue ON starts (queue, at);
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date inside one IMMEDIATE transaction; returns the version.

    Refuses a database written by a newer Corral (its schema may not be readable).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS corral_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM corral_schema").fetchone()
        version = row[0] if row else 0
        if row is None:
            conn.execute("INSERT INTO corral_schema (version) VALUES (0)")
        if version > len(MIGRATIONS):
            raise ConfigurationError(
                f"the database is at schema version {version}, newer than this Corral "
                f"understands ({len(MIGRATIONS)}); upgrade corral"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute("UPDATE corral_schema SET version = ?", (number,))
        conn.execute("COMMIT")
        return len(MIGRATIONS)
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    # executescript() would commit the open transaction; split and run one by one.
    return [s.strip() for s in script.split(";") if s.strip()]
