"""The one unit of work every system runs, and the Redis keys the harness watches.

A job is one ``INCR`` of ``COUNTER`` through a Redis client the job's process owns; a
latency probe first ``RPUSH``es its start time (``time.time()``) onto ``STARTS``. The
harness polls the counter with its own client, so no library's result API is timed.
Worker processes find Redis through the ``BENCH_REDIS_URL`` environment variable.
"""

from __future__ import annotations

import os
import time
from typing import Any

COUNTER = "bench:count"
STARTS = "bench:starts"
QUEUE = "bench"

_async_clients: dict[int, Any] = {}
_sync_client: Any = None


def redis_url() -> str:
    return os.environ["BENCH_REDIS_URL"]


def async_client() -> Any:
    """A redis.asyncio client per process (created on first use, in the worker)."""
    pid = os.getpid()
    client = _async_clients.get(pid)
    if client is None:
        from redis.asyncio import Redis

        client = _async_clients[pid] = Redis.from_url(redis_url())
    return client


def sync_client() -> Any:
    """A thread-safe redis-py client (pooled) for thread- and process-based workers."""
    global _sync_client
    if _sync_client is None:
        from redis import Redis

        _sync_client = Redis.from_url(redis_url())
    return _sync_client


async def incr_async(client: Any = None) -> None:
    await (client or async_client()).incr(COUNTER)


async def stamp_async(client: Any = None) -> None:
    started = time.time()
    client = client or async_client()
    await client.rpush(STARTS, repr(started))
    await client.incr(COUNTER)


def incr_sync(client: Any = None) -> None:
    (client or sync_client()).incr(COUNTER)


def stamp_sync(client: Any = None) -> None:
    started = time.time()
    client = client or sync_client()
    client.rpush(STARTS, repr(started))
    client.incr(COUNTER)
