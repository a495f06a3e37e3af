"""Reading jobs stored with an earlier key layout (until no such job is left).

Before issue 15 a job's error and log lists were named ``j:{id}:err`` and
``j:{id}:log`` (hash fields ``xe`` / ``xl``); job ids may contain ``:``, so such a
name could be another job's hash. Jobs stored then still show their errors and logs:
a read that meets those fields fetches the old lists in one more pipelined round
trip, and deleting such a job deletes them (``delete_job`` in ``common.lua``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from corral.backends.redis.keys import QueueKeys
from redis.asyncio import Redis

__all__ = ["add_old_lists"]

_FLAGS = (b"xe", b"xl")


async def add_old_lists(
    client: Redis, keys: QueueKeys, job_ids: Sequence[str], replies: list[Any]
) -> None:
    """Put old-layout errors and logs ahead of the new ones in ``replies`` (three per
    job: hash, errors, logs, as ``RedisReads._get_many`` reads them)."""
    wanted = [
        (3 * i + 1 + kind, key)
        for i, job_id in enumerate(job_ids)
        for kind, (flag, key) in enumerate(zip(_FLAGS, keys.old_lists(job_id), strict=True))
        if flag in replies[3 * i]
    ]
    if not wanted:
        return
    async with client.pipeline(transaction=False) as pipe:
        for _, key in wanted:
            pipe.lrange(key, 0, -1)
        lists = await pipe.execute(raise_on_error=False)
    for (slot, _), old in zip(wanted, lists, strict=True):
        if isinstance(old, list):  # else WRONGTYPE: the name is another job's hash
            replies[slot] = old + replies[slot]
