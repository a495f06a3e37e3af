"""Reading jobs back: whole (hash, error and log lists), by state, or in brief.

A mixin of :class:`~corral.backends.redis.backend.RedisBackend`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from corral.backends.base import JobBrief, JobRecord, JobState
from corral.backends.redis.legacy import add_old_lists
from corral.backends.redis.mux import MuxRedis
from corral.backends.redis.plumbing import Plumbing
from corral.backends.redis.records import record_from_hash, stored_state, waiting_order
from corral.backends.redis.records import text as _text

__all__ = ["RedisReads"]


class RedisReads(Plumbing):
    """``get``, ``get_many``, ``job_briefs`` and ``list_jobs``."""

    async def get(self, queue: str, job_id: str) -> JobRecord | None:
        records = await self._get_many(queue, [job_id])
        return records[0]

    async def get_many(self, queue: str, job_ids: Sequence[str]) -> list[JobRecord | None]:
        return await self._get_many(queue, job_ids) if job_ids else []

    async def job_briefs(self, queue: str, job_ids: Sequence[str]) -> list[JobBrief | None]:
        if not job_ids:
            return []
        keys = self._k(queue)

        def add(pipe: Any) -> None:
            for job_id in job_ids:
                pipe.hmget(keys.job(job_id), "state", "name", "att")

        briefs: list[JobBrief | None] = []
        for state, name, att in await self._pipelined(add):
            known = stored_state(state, name)
            briefs.append(
                JobBrief(JobState(known), name.decode(), int(att or 0)) if known else None
            )
        return briefs

    async def _get_many(self, queue: str, job_ids: Sequence[str]) -> list[JobRecord | None]:
        keys = self._k(queue)

        def add(pipe: Any) -> None:
            for job_id in job_ids:
                pipe.hgetall(keys.job(job_id))
                pipe.lrange(keys.errors(job_id), 0, -1)
                pipe.lrange(keys.logs(job_id), 0, -1)

        client = self._client_or_fail()
        replies: list[Any]
        if len(job_ids) == 1 and isinstance(client, MuxRedis):
            # One job (Job.refresh, every API read of a job): three commands on the
            # shared connection cost a fraction of a pooled pipeline's checkout.
            job_id = job_ids[0]

            async def three() -> list[Any]:
                return list(
                    await asyncio.gather(
                        client.hgetall(keys.job(job_id)),
                        client.lrange(keys.errors(job_id), 0, -1),
                        client.lrange(keys.logs(job_id), 0, -1),
                    )
                )

            replies = await self._call(three)
        else:
            replies = await self._pipelined(add)
        await self._call(lambda: add_old_lists(client, keys, job_ids, replies))
        return [
            record_from_hash(queue, job_id, replies[3 * i], replies[3 * i + 1], replies[3 * i + 2])
            for i, job_id in enumerate(job_ids)
        ]

    async def list_jobs(
        self, queue: str, state: JobState, offset: int, limit: int
    ) -> list[JobRecord]:
        client = self._client_or_fail()
        if limit <= 0:
            return []
        keys = self._k(queue)
        key = keys.state_set(state.value)
        end = offset + limit - 1
        raw: list[Any]
        if state.terminal:
            raw = await self._call(lambda: client.zrevrange(key, offset, end))
        elif state is JobState.WAITING:

            def add(pipe: Any) -> None:
                pipe.lrange(keys.fifo, 0, end)
                pipe.zrange(keys.wait, 0, end, withscores=True)
                pipe.zrange(keys.grouped_wait, 0, end, withscores=True)

            fifo, plain, grouped = await self._pipelined(add)
            raw = waiting_order(fifo, plain, grouped)[offset : end + 1]
        else:
            raw = await self._call(lambda: client.zrange(key, offset, end))
        records = await self._get_many(queue, [_text(i) for i in raw])
        return [r for r in records if r is not None]
