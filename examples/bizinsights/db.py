"""The app's own database: stdlib sqlite3, one short connection per call.

Tables: ``organizations`` (with an IANA time zone), ``scheduled_reports`` (the rows
the report schedules are made from), ``integrations``, ``orders`` (what a sync pulls
in) and ``alerts``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS organizations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    currency TEXT NOT NULL DEFAULT 'USD'
);
CREATE TABLE IF NOT EXISTS scheduled_reports (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    frequency TEXT NOT NULL CHECK (frequency IN ('daily', 'weekly', 'monthly')),
    recipients TEXT NOT NULL  -- comma-separated
);
CREATE TABLE IF NOT EXISTS integrations (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    platform TEXT NOT NULL,
    shop TEXT NOT NULL,
    last_synced_at TEXT
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,  -- the platform's order id: a sync run twice stores it once
    integration_id INTEGER NOT NULL REFERENCES integrations(id),
    organization_id INTEGER NOT NULL,
    total_cents INTEGER NOT NULL,
    placed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
"""


@contextmanager
def connect(path: str) -> Iterator[sqlite3.Connection]:
    """A connection that commits on success and is always closed."""
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def init(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)


def one(path: str, sql: str, *params: Any) -> dict[str, Any] | None:
    with connect(path) as conn:
        row = conn.execute(sql, params).fetchone()
    return dict(row) if row else None


def all_rows(path: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with connect(path) as conn:
        return [dict(row) for row in conn.execute(sql, params)]


def insert(path: str, sql: str, *params: Any) -> int:
    with connect(path) as conn:
        cursor = conn.execute(sql, params)
        return int(cursor.lastrowid or 0)
