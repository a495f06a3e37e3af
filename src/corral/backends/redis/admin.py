"""Queue settings, schedules, counts and totals, the queue listing and the worker
registry on Redis.

A mixin of :class:`RedisBackend` (split out to keep each module to one concern): it
uses the backend's plumbing, declared below and provided by the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from corral.backends.base import (
    DURATION_BUCKETS,
    JobState,
    NewJob,
    QueueLimits,
    QueueOverview,
    QueueStats,
    ScheduleRecord,
    WorkerInfo,
)
from corral.backends.redis.keys import QueueKeys
from corral.backends.redis.plumbing import Plumbing
from corral.backends.redis.records import job_row
from corral.backends.redis.records import text as _text
from corral.backends.wire import decode_worker, encode_worker

__all__ = ["RedisAdmin"]


_STATES = list(JobState)
_LIMITS = ("max_active", "rate_max", "rate_ms", "gmax", "grate", "grate_ms")
_READS = len(_STATES) + 4  # commands per queue queued by _read_queue


def _read_queue(pipe: Any, keys: QueueKeys) -> None:
    """Queue the reads that :func:`_decode` turns into a queue's counts and meta."""
    for state in _STATES:
        pipe.zcard(keys.state_set(state.value))
    pipe.zcard(keys.grouped_wait)
    pipe.llen(keys.fifo)
    pipe.hgetall(keys.meta)
    pipe.hlen(keys.base + "sched")


def _decode(replies: Sequence[Any]) -> tuple[dict[str, int], dict[str, str], int]:
    """(counts with ``paused``, the meta hash as text, how many schedules)."""
    n = len(_STATES)
    counts = {state.value: int(v) for state, v in zip(_STATES, replies[:n], strict=True)}
    counts[JobState.WAITING.value] += int(replies[n]) + int(replies[n + 1])
    meta = {_text(k): _text(v) for k, v in replies[n + 2].items()}
    counts["paused"] = int(meta.get("paused") == "1")
    return counts, meta, int(replies[n + 3])


def _stats(meta: dict[str, str]) -> QueueStats:
    return QueueStats(
        completed=int(meta.get("m:completed", 0)),
        failed=int(meta.get("m:failed", 0)),
        retried=int(meta.get("m:retried", 0)),
        duration_sum=float(meta.get("m:sum", 0.0)),
        buckets=tuple(int(meta.get(f"m:b{i}", 0)) for i in range(1, len(DURATION_BUCKETS) + 2)),
    )


def _unused(counts: dict[str, int], meta: dict[str, str], schedules: int) -> bool:
    """Nothing holds the queue: no job, schedule, limit or pause (forget.lua decides)."""
    return not (any(counts.values()) or schedules or any(name in meta for name in _LIMITS))


class RedisAdmin(Plumbing):
    """Settings, schedules, stats and workers (see the module docstring)."""

    async def set_paused(self, queue: str, paused: bool) -> None:
        keys = self._k(queue)

        # The registry lives in a slot of its own (a cluster's transaction covers one).
        client = self._client_or_fail()
        await self._call(lambda: client.sadd(self._registry.queues, queue))

        def add(pipe: Any) -> None:
            if paused:
                pipe.hset(keys.meta, "paused", "1")
            else:
                pipe.hdel(keys.meta, "paused")
                pipe.zadd(keys.marker, {"0": 0})

        await self._pipelined(add, transaction=True)

    async def set_limits(self, queue: str, limits: QueueLimits) -> None:
        await self._run("limits", queue, ["" if v is None else v for v in limits.stored()])
        client = self._client_or_fail()
        await self._call(lambda: client.sadd(self._registry.queues, queue))

    async def limits(self, queue: str) -> QueueLimits:
        client = self._client_or_fail()
        raw = await self._call(lambda: client.hmget(self._k(queue).meta, list(_LIMITS)))
        return QueueLimits.from_stored([None if v is None else int(v) for v in raw])

    async def stats(self, queue: str) -> QueueStats:
        client = self._client_or_fail()
        raw = await self._call(lambda: client.hgetall(self._k(queue).meta))
        return _stats({_text(k): _text(v) for k, v in raw.items()})

    async def counts(self, queue: str) -> dict[str, int]:
        keys = self._k(queue)
        return _decode(await self._pipelined(lambda pipe: _read_queue(pipe, keys)))[0]

    async def queues(self) -> list[str]:
        client = self._client_or_fail()
        members = await self._call(lambda: client.smembers(self._registry.queues))
        return sorted(_text(m) for m in members)

    async def find_job_queue(self, job_id: str) -> str | None:
        # Two round trips whatever the number of queues: the names, then an EXISTS
        # on each one's job hash (a queue per slot: no one script can see them all).
        names = await self.queues()
        if not names:
            return None
        found = await self._pipelined(
            lambda pipe: [pipe.exists(self._k(name).job(job_id)) for name in names]
        )
        return next((name for name, hit in zip(names, found, strict=True) if hit), None)

    async def overview(self) -> list[QueueOverview]:
        registry = self._registry
        # Two round trips whatever the number of queues: the names, then everything.
        names_raw, worker_ids = await self._pipelined(
            lambda pipe: (pipe.smembers(registry.queues), pipe.smembers(registry.workers))
        )
        names = sorted(_text(m) for m in names_raw)

        def read_all(pipe: Any) -> None:
            for name in names:
                _read_queue(pipe, self._k(name))
            for worker_id in worker_ids:
                pipe.get(registry.worker_prefix + _text(worker_id))

        replies = await self._pipelined(read_all)
        served = {
            queue
            for raw in replies[len(names) * _READS :]
            if raw is not None
            for queue in decode_worker(raw, 0, 0).queues
        }
        listed: dict[str, QueueOverview] = {}
        unused: list[str] = []
        for i, name in enumerate(names):
            counts, meta, schedules = _decode(replies[i * _READS : (i + 1) * _READS])
            listed[name] = QueueOverview(name, counts, _stats(meta))
            if name not in served and _unused(counts, meta, schedules):
                unused.append(name)
        for name in await self._forget(unused):
            del listed[name]
        return list(listed.values())

    async def _forget(self, names: list[str]) -> list[str]:
        """Forget queues found unused; returns those forgotten. The registry is in
        another slot than a queue's keys, so it changes after the queue's own check
        (forget.lua), and a second check puts back a queue that gained a job or a
        setting in between. (An enqueue after the first check registers the queue
        again itself: the check cleared its ``reg`` flag.)"""

        client = self._client_or_fail()

        async def check(batch: list[str]) -> list[str]:
            calls = [(self._queue_keys(self._k(n)), [self._k(n).script_base]) for n in batch]
            done = await self._call(lambda: self._scripts_or_fail().run_many("forget", calls))
            return [name for name, ok in zip(batch, done, strict=True) if ok]

        gone = await check(names) if names else []
        if not gone:
            return []
        await self._call(lambda: client.srem(self._registry.queues, *gone))
        still = await check(gone)
        if back := sorted(set(gone) - set(still)):
            await self._call(lambda: client.sadd(self._registry.queues, *back))
        return still

    async def upsert_schedule(
        self, queue: str, name: str, definition: bytes, next_at: int | None, *, keep: bool
    ) -> bool:
        nxt = -1 if next_at is None else next_at
        args = [name, definition, nxt, "keep" if keep else "replace"]
        stored = bool(await self._run("schedule_upsert", queue, args))
        client = self._client_or_fail()
        await self._call(lambda: client.sadd(self._registry.queues, queue))
        return stored

    async def remove_schedule(self, queue: str, name: str) -> bool:
        base = self._k(queue).base

        def add(pipe: Any) -> None:
            pipe.hdel(base + "sched", name)
            pipe.zrem(base + "sched:next", name)
            pipe.hdel(base + "sched:last", name)

        removed, _, _ = await self._pipelined(add, transaction=True)
        return bool(removed)

    async def schedules(self, queue: str) -> list[ScheduleRecord]:
        base = self._k(queue).base

        def add(pipe: Any) -> None:
            pipe.hgetall(base + "sched")
            pipe.zrange(base + "sched:next", 0, -1, withscores=True)
            pipe.hgetall(base + "sched:last")

        # Not MULTI: a Redis at maxmemory refuses every command queued in one.
        defs, pending, last = await self._pipelined(add)
        next_at = {_text(n): int(score) for n, score in pending}
        last_at = {_text(n): int(v) for n, v in last.items()}
        return [
            ScheduleRecord(name, definition, next_at.get(name), last_at.get(name))
            for name, definition in sorted((_text(n), d) for n, d in defs.items())
        ]

    async def fire_schedule(
        self, queue: str, name: str, tick: int, next_at: int | None, job: NewJob | None
    ) -> bool:
        args: list[Any] = [name, tick, -1 if next_at is None else next_at]
        if job is not None:
            args.append(orjson.dumps(job_row(job)))
        return bool(await self._run("schedule_fire", queue, args))

    async def register_worker(self, info: WorkerInfo, ttl_ms: int) -> None:
        payload = encode_worker(info, ttl_ms)

        def add(pipe: Any) -> None:
            pipe.set(self._registry.worker_prefix + info.id, payload, px=ttl_ms)
            pipe.sadd(self._registry.workers, info.id)

        await self._pipelined(add, transaction=True)

    async def unregister_worker(self, worker_id: str) -> None:
        def add(pipe: Any) -> None:
            pipe.delete(self._registry.worker_prefix + worker_id)
            pipe.srem(self._registry.workers, worker_id)

        await self._pipelined(add, transaction=True)

    async def workers(self) -> list[WorkerInfo]:
        client = self._client_or_fail()
        members = await self._call(lambda: client.smembers(self._registry.workers))
        ids = sorted(_text(m) for m in members)
        if not ids:
            return []

        def add(pipe: Any) -> None:
            for worker_id in ids:
                pipe.get(self._registry.worker_prefix + worker_id)
                pipe.pttl(self._registry.worker_prefix + worker_id)

        replies = await self._pipelined(add)
        now = await self.time_ms()
        live: list[WorkerInfo] = []
        dead: list[str] = []
        for i, worker_id in enumerate(ids):
            raw, ttl = replies[2 * i], replies[2 * i + 1]
            if raw is None:
                dead.append(worker_id)
                continue
            live.append(decode_worker(raw, int(ttl), now))
        if dead:
            await self._call(lambda: client.srem(self._registry.workers, *dead))
        return live
