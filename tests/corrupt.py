"""Test-only direct writes into a backend's store: garbage in one stored JSON field of a
job, to check that readers flag it instead of failing (nothing else writes stores)."""

from __future__ import annotations

import sqlite3

from corral.backends.base import Backend
from corral.backends.redis import RedisBackend
from corral.backends.redis.keys import QueueKeys
from corral.backends.sqlite import SQLiteBackend

__all__ = ["FIELDS", "write_raw", "write_raw_worker"]

#: The stored JSON fields of a job, by their name in the API.
FIELDS = ("args", "progress", "result", "errors")

_REDIS_FIELD = {"args": "data", "progress": "prog", "result": "res"}
_SQLITE_COLUMN = {"args": "data", "progress": "progress", "result": "result"}


async def write_raw(backend: Backend, queue: str, job_id: str, field: str, raw: bytes) -> None:
    """Overwrite ``field`` of a stored job with ``raw`` (for errors: every error entry)."""
    if isinstance(backend, RedisBackend):
        keys = QueueKeys.build(backend.prefix, queue)
        client = backend.redis  # any topology: a cluster's client finds the node
        if field == "errors":
            await client.delete(keys.errors(job_id))
            await client.rpush(keys.errors(job_id), raw)
        else:
            await client.hset(keys.job(job_id), _REDIS_FIELD[field], raw)
    elif isinstance(backend, SQLiteBackend):
        with sqlite3.connect(backend.path) as conn:
            if field == "errors":
                conn.execute(
                    "DELETE FROM job_errors WHERE queue = ? AND job_id = ?", (queue, job_id)
                )
                conn.execute(
                    "INSERT INTO job_errors (queue, job_id, error) VALUES (?, ?, ?)",
                    (queue, job_id, raw),
                )
            else:
                column = _SQLITE_COLUMN[field]
                conn.execute(
                    f"UPDATE jobs SET {column} = ? WHERE queue = ? AND id = ?",
                    (raw, queue, job_id),
                )
        conn.close()
    else:
        raise TypeError(f"no direct store access for {type(backend).__name__}")


async def write_raw_worker(backend: Backend, worker_id: str, raw: bytes) -> None:
    """Overwrite the stored record of a registered worker with ``raw``."""
    if isinstance(backend, RedisBackend):
        key = f"{backend.prefix}:{{workers}}:w:{worker_id}"
        assert await backend.redis.set(key, raw, xx=True, keepttl=True)
    elif isinstance(backend, SQLiteBackend):
        with sqlite3.connect(backend.path) as conn:
            conn.execute("UPDATE workers SET info = ? WHERE id = ?", (raw, worker_id))
        conn.close()
    else:
        raise TypeError(f"no direct store access for {type(backend).__name__}")
