"""Queue settings, schedules, totals and the worker registry on Redis.

A mixin of :class:`RedisBackend` (split out to keep each module to one concern): it
uses the backend's plumbing, declared below and provided by the backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from corral.backends.base import (
    DURATION_BUCKETS,
    NewJob,
    QueueLimits,
    QueueStats,
    ScheduleRecord,
    WorkerInfo,
)
from corral.backends.redis.keys import QueueKeys, RegistryKeys
from corral.backends.redis.records import job_row
from corral.backends.redis.records import text as _text
from corral.backends.wire import decode_worker, encode_worker
from redis.asyncio import Redis

__all__ = ["RedisAdmin"]

T = TypeVar("T")


class RedisAdmin:
    """Settings, schedules, stats and workers (see the module docstring)."""

    _registry: RegistryKeys

    async def _call(self, do: Callable[[], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def _pipelined(
        self, add: Callable[[Any], object], transaction: bool = False
    ) -> list[Any]:
        raise NotImplementedError

    def _client_or_fail(self) -> Redis:
        raise NotImplementedError

    def _k(self, queue: str) -> QueueKeys:
        raise NotImplementedError

    async def _run(self, name: str, queue: str, args: list[Any]) -> Any:
        raise NotImplementedError

    async def time_ms(self) -> int:
        raise NotImplementedError

    async def set_paused(self, queue: str, paused: bool) -> None:
        keys = self._k(queue)

        def add(pipe: Any) -> None:
            pipe.sadd(self._registry.queues, queue)
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
        names = ["max_active", "rate_max", "rate_ms", "gmax", "grate", "grate_ms"]
        raw = await self._call(lambda: client.hmget(self._k(queue).meta, names))
        return QueueLimits.from_stored([None if v is None else int(v) for v in raw])

    async def stats(self, queue: str) -> QueueStats:
        client = self._client_or_fail()
        raw = await self._call(lambda: client.hgetall(self._k(queue).meta))
        meta = {_text(k): _text(v) for k, v in raw.items()}
        return QueueStats(
            completed=int(meta.get("m:completed", 0)),
            failed=int(meta.get("m:failed", 0)),
            retried=int(meta.get("m:retried", 0)),
            duration_sum=float(meta.get("m:sum", 0.0)),
            buckets=tuple(int(meta.get(f"m:b{i}", 0)) for i in range(1, len(DURATION_BUCKETS) + 2)),
        )

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
