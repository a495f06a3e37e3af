"""The units of work every system runs, and the Redis keys the harness watches.

Every system's job bodies are the same, through a plain client of its language that
the job's process creates the same way (``Redis.from_url(BENCH_REDIS_URL)``; ioredis
on Node):

- ``incr`` (the headline body): one ``INCR`` of ``COUNTER``.
- ``stamp`` (latency probe): ``RPUSH`` of its start time (``time.time()``) onto
  ``STARTS``, then the ``INCR``.
- ``noop`` (the empty body): no Redis call in the job. The job only adds one to a
  process-local count under a lock; a timer thread of that process writes the count
  to the hash ``DONE`` (``HSET DONE <pid> <count>``) every ``FLUSH_S`` when it has
  changed. Every system pays the same for it (Node: the same timer in its loop), and
  it costs the job no round trip, so the drain measures the queue's own overhead.
- ``cpu`` (the embedded scenarios' small CPU body): a pure-Python loop of
  ``CPU_LOOPS`` additions (about 30-50 µs here, holding the GIL), then the empty
  body's count.

The harness counts completions as ``GET COUNTER`` + the sum of ``DONE``'s values,
with its own client, so no library's result API is timed. Each asyncio worker process
also records, once, which event loop ran its first job (``LOOPS``). Worker processes
find Redis through the ``BENCH_REDIS_URL`` environment variable.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

COUNTER = "bench:count"
STARTS = "bench:starts"
DONE = "bench:done"
LOOPS = "bench:loops"
QUEUE = "bench"
FLUSH_S = 0.005

_async_clients: dict[int, Any] = {}
_sync_client: Any = None
_loop_noted: set[int] = set()


def redis_url() -> str:
    return os.environ["BENCH_REDIS_URL"]


def async_client() -> Any:
    """A plain pooled ``redis.asyncio.Redis`` per process (made on first use, in the
    worker): the same for every asyncio system, Corral included."""
    pid = os.getpid()
    client = _async_clients.get(pid)
    if client is None:
        from redis.asyncio import Redis

        client = _async_clients[pid] = Redis.from_url(redis_url())
    return client


def sync_client() -> Any:
    """A plain pooled (thread-safe) ``redis.Redis`` for thread- and process-based workers."""
    global _sync_client
    if _sync_client is None or _sync_client_pid != os.getpid():
        _new_sync_client()
    return _sync_client


_sync_client_pid = 0


def _new_sync_client() -> None:
    global _sync_client, _sync_client_pid
    from redis import Redis

    _sync_client, _sync_client_pid = Redis.from_url(redis_url()), os.getpid()


async def _note_loop(client: Any) -> None:
    """Once per process: which event loop runs the jobs (shown in the results)."""
    pid = os.getpid()
    if pid not in _loop_noted:
        _loop_noted.add(pid)
        loop = asyncio.get_running_loop()
        await client.hset(LOOPS, str(pid), type(loop).__module__)


async def incr_async(client: Any = None) -> None:
    client = client or async_client()
    await _note_loop(client)
    await client.incr(COUNTER)


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


class _Done:
    """The process-local completion count of empty-body jobs and its flusher thread."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.count = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._flush, name="bench-done", daemon=True).start()

    def _flush(self) -> None:
        from redis import Redis

        client, pid, sent = Redis.from_url(redis_url()), str(self.pid), 0
        while True:
            time.sleep(FLUSH_S)
            now = self.count
            if now != sent:
                client.hset(DONE, pid, now)
                sent = now


_done: _Done | None = None
_done_lock = threading.Lock()


CPU_LOOPS = 1_000


def cpu() -> None:
    """The small CPU body: fixed pure-Python work, then counted like the empty body."""
    total = 0
    for i in range(CPU_LOOPS):
        total += i
    noop()


def noop() -> None:
    """The empty body (sync or async systems alike): count this job as done."""
    global _done
    done = _done
    if done is None or done.pid != os.getpid():  # first job, or a forked pool child
        with _done_lock:
            if _done is None or _done.pid != os.getpid():
                _done = _Done()
            done = _done
    with done.lock:
        done.count += 1
