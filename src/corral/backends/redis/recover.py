"""What a claim whose reply was lost did: the jobs leased to its token.

A claim is never sent twice: if Redis ran it and the reply was lost, a second claim
would lease more jobs while the first batch waits out a lease nobody holds and counts
a stall. Its token prefix is made here, so the jobs it leased can be found and adopted
instead: the caller gets them as if the reply had arrived. Only runs after a failure.
"""

from __future__ import annotations

from corral.backends.base import ClaimedJob
from corral.backends.redis.keys import QueueKeys
from corral.backends.redis.records import text
from redis.asyncio import Redis

__all__ = ["adopt"]

_FIELDS = ("tok", "state", "name", "data", "att", "opts", "stalls")
_CHUNK = 500


async def adopt(client: Redis, keys: QueueKeys, queue: str, prefix: str) -> list[ClaimedJob]:
    """The active jobs of ``queue`` leased by the claim whose tokens start with
    ``prefix``, in the order that claim returned them (empty if it did not run)."""
    ids = [text(i) for i in await client.zrange(keys.active, 0, -1)]
    mine: list[tuple[int, ClaimedJob]] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        async with client.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hmget(keys.job(job_id), _FIELDS)
            rows = await pipe.execute()
        for job_id, (tok, state, name, data, att, opts, stalls) in zip(chunk, rows, strict=True):
            if tok is None or state != b"active" or not tok.startswith(prefix.encode()):
                continue
            token = tok.decode()
            job = ClaimedJob(
                job_id,
                queue,
                name.decode(),
                data,
                int(att or 0),
                token,
                opts or b"",
                int(stalls or 0),
            )
            mine.append((int(token[len(prefix) :]), job))
    return [job for _, job in sorted(mine, key=lambda pair: pair[0])]
