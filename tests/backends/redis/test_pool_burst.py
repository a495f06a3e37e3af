"""Commands that need a pooled connection (pipelines, pub/sub, WAIT) queue for one
when the pool is busy instead of failing: under many concurrent reads (an API
process with many open event streams) a stored job must never be reported as an
error because its re-read found the pool full."""

from __future__ import annotations

import asyncio

from corral.backends.redis import RedisBackend
from tests.contract.conftest import enqueue


async def test_a_burst_of_reads_larger_than_the_pool_waits_for_connections(
    backend: RedisBackend,
) -> None:
    await enqueue(backend, "q", "j1")
    burst = 3 * backend.redis.connection_pool.max_connections
    records = await asyncio.gather(*(backend.get("q", "j1") for _ in range(burst)))
    assert {r.id for r in records if r is not None} == {"j1"}
    assert len(records) == burst
