"""Why a job has not started, on Redis: :meth:`wait_facts` (one read-only script,
``lua/facts.lua``) and the per-queue record of live workers it counts.

The worker registry lives in its own slot (``{workers}``), so one script cannot read
it together with a queue. Each heartbeat therefore also marks the worker in every
queue it serves (``lua/serving.lua``: a sorted set in the queue's slot, scored by when
the mark expires). A queue that shows no mark is checked against the registry too,
so a worker of an older Corral (which marks nothing) still counts.
"""

from __future__ import annotations

from typing import Any

from corral.backends.base import POSITION_BOUND, JobState, RateWindow, WaitFacts, WorkerInfo
from corral.backends.redis.admin import RedisAdmin
from corral.backends.redis.records import text as _text
from corral.backends.wire import decode_worker

__all__ = ["RedisFacts"]


def _opt(value: Any) -> int | None:
    return None if value in (b"", "", None) else int(value)


def _window(limit: Any, window_ms: Any, count: Any, oldest: Any) -> RateWindow | None:
    rate_max, ms = _opt(limit), _opt(window_ms)
    if rate_max is None or ms is None:
        return None
    first = _opt(oldest)
    return RateWindow(int(count), rate_max, ms, None if first is None else first + ms)


class RedisFacts(RedisAdmin):
    """:meth:`wait_facts` and the per-queue worker marks (see the module docstring)."""

    #: How far the place in line is counted (see WaitFacts.position_at_least).
    position_bound = POSITION_BOUND

    async def wait_facts(self, queue: str, job_id: str) -> WaitFacts | None:
        r = await self._run("facts", queue, [job_id, self.position_bound])
        if not r:
            return None
        workers = int(r[17])
        if workers == 0:
            # Workers of a Corral that predates the marks are only in the registry.
            workers = sum(queue in w.queues for w in await self.workers())
        position = int(r[18])
        return WaitFacts(
            queue=queue,
            job_id=job_id,
            state=JobState(_text(r[0])),
            now=int(r[19]),
            run_at=_opt(r[1]),
            attempts=int(r[2]),
            group=_text(r[3]) or None,
            paused=bool(int(r[4])),
            active=int(r[5]),
            max_active=_opt(r[6]),
            rate=_window(r[7], r[8], r[9], r[10]),
            group_active=int(r[11]),
            group_max_active=_opt(r[12]) if r[3] else None,
            group_rate=_window(r[13], r[14], r[15], r[16]) if r[3] else None,
            workers=workers,
            position=None if position < 0 else position,
            position_at_least=position >= 0 and bool(int(r[20])),
        )

    async def register_worker(self, info: WorkerInfo, ttl_ms: int) -> None:
        await super().register_worker(info, ttl_ms)
        await self._mark_serving(info.id, info.queues, ttl_ms)

    async def unregister_worker(self, worker_id: str) -> None:
        client = self._client_or_fail()
        key = self._registry.worker_prefix + worker_id
        raw = await self._call(lambda: client.get(key))
        await super().unregister_worker(worker_id)
        if raw is not None:
            await self._mark_serving(
                worker_id,
                decode_worker(raw.encode() if isinstance(raw, str) else raw, 0, 0).queues,
                0,
            )

    async def _mark_serving(self, worker_id: str, queues: list[str], ttl_ms: int) -> None:
        """One pipelined round trip: mark (``ttl_ms`` > 0) or unmark the worker in
        each queue's own slot."""
        if not queues:
            return
        calls = [
            (self._queue_keys(self._k(q)), [self._k(q).script_base, worker_id, ttl_ms])
            for q in queues
        ]
        await self._call(lambda: self._scripts_or_fail().run_many("serving", calls))
