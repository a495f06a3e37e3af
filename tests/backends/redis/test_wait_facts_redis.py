"""Redis specifics of wait_facts: live workers are counted from marks in the queue's
own slot, with the registry as a fallback for workers that do not mark queues."""

from __future__ import annotations

from corral.backends.base import WorkerInfo
from corral.backends.redis import RedisBackend
from corral.backends.redis.admin import RedisAdmin
from corral.blockers import blockers
from tests.contract.conftest import enqueue


def _info(queues: list[str]) -> WorkerInfo:
    return WorkerInfo("old:7:cc", "old", 7, queues, 1, 0, 0)


async def test_a_worker_that_marks_no_queue_still_counts(backend: RedisBackend) -> None:
    await enqueue(backend, "emails", "j1")
    # What a Corral from before the marks does: the registry record alone.
    await RedisAdmin.register_worker(backend, _info(["emails"]), 60_000)
    assert not await backend.redis.exists("corral:{emails}:wk")
    facts = await backend.wait_facts("emails", "j1")
    assert facts is not None and facts.workers == 1
    assert blockers(facts) == []


async def test_marks_are_scored_by_expiry_and_the_key_expires(backend: RedisBackend) -> None:
    await backend.register_worker(_info(["emails", "reports"]), 60_000)
    now = await backend.time_ms()
    for queue in ("emails", "reports"):
        key = f"corral:{{{queue}}}:wk"
        score = await backend.redis.zscore(key, "old:7:cc")
        assert score is not None and now < score <= now + 60_000
        assert 0 < await backend.redis.pttl(key) <= 60_000
    await backend.unregister_worker("old:7:cc")
    assert not await backend.redis.exists("corral:{emails}:wk", "corral:{reports}:wk")
