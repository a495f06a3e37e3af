"""The queue listing on Redis: a fixed number of round trips whatever the number of
queues, and a forgotten queue leaves no key behind."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from corral.backends.base import Completion, Retention
from corral.backends.redis import RedisBackend
from tests.contract.conftest import claim_one, enqueue


class RoundTrips:
    """Counts what the backend's client sends: single commands and pipelines."""

    def __init__(self, client: Any) -> None:
        self.commands = self.pipelines = 0
        command, pipeline = client.execute_command, client.pipeline

        async def counted_command(*args: Any, **options: Any) -> Any:
            self.commands += 1
            return await command(*args, **options)

        def counted_pipeline(*args: Any, **options: Any) -> Any:
            pipe = pipeline(*args, **options)
            execute = pipe.execute

            async def counted_execute(*a: Any, **k: Any) -> Any:
                self.pipelines += 1
                return await execute(*a, **k)

            pipe.execute = counted_execute
            return pipe

        client.execute_command = counted_command
        client.pipeline = counted_pipeline

    async def of(self, call: Callable[[], Awaitable[object]]) -> tuple[int, int]:
        before = (self.commands, self.pipelines)
        await call()
        return self.commands - before[0], self.pipelines - before[1]


async def _emptied(backend: RedisBackend, queue: str) -> None:
    await enqueue(backend, queue, "x", group="g")
    job = await claim_one(backend, queue)
    done = [Completion(job.id, job.token, b"1")]
    assert await backend.complete(queue, done, Retention(count=0)) == [True]


async def test_listing_takes_two_round_trips_whatever_the_number_of_queues(
    backend: RedisBackend,
) -> None:
    trips = RoundTrips(backend.redis)
    for i in range(3):
        await enqueue(backend, f"few{i}", "a", "b")
    assert len(await backend.overview()) == 3
    assert await trips.of(backend.overview) == (0, 2)
    for i in range(60):
        await enqueue(backend, f"many{i}", "a")
    assert len(await backend.overview()) == 63
    assert await trips.of(backend.overview) == (0, 2)


async def test_forgetting_takes_the_same_round_trips_for_one_queue_or_forty(
    backend: RedisBackend,
) -> None:
    await _emptied(backend, "one")
    await backend.overview()  # loads the forget script: not what is counted
    await _emptied(backend, "one")
    trips = RoundTrips(backend.redis)
    few = await trips.of(backend.overview)
    assert few == (1, 4)  # list (2 pipelines), check, drop from the registry, check again
    assert await backend.queues() == []
    for i in range(40):
        await _emptied(backend, f"q{i}")
    assert len(await backend.queues()) == 40
    assert await trips.of(backend.overview) == few
    assert await backend.queues() == []


async def test_a_forgotten_queue_leaves_no_key(backend: RedisBackend, redis_url: str) -> None:
    await _emptied(backend, "gone")
    await backend.set_paused("gone", True)
    await backend.set_paused("gone", False)  # leaves a wake-up marker and the meta hash
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.keys("corral:{gone}:*") != []
        assert await backend.overview() == []
        # Only the history slots of its last jobs stay, and they expire by themselves.
        left = await client.keys("corral:{gone}:*")
        assert all(k.split(b":")[-2] in (b"hm", b"hq") for k in left), left
        assert all([await client.ttl(k) > 0 for k in left]), left
    finally:
        await client.aclose()


async def test_a_queue_that_gets_a_job_or_schedule_while_being_forgotten_stays_listed(
    backend: RedisBackend, redis_url: str
) -> None:
    # Another producer acts between the queue's own check and the registry update
    # (they are in different Cluster slots, so not one atomic step).
    producer = RedisBackend(redis_url)
    await producer.connect()
    try:
        for queue in ("jobbed", "scheduled"):
            await enqueue(producer, queue, "first")  # the producer knows the queue now
            job = await claim_one(producer, queue)
            done = [Completion(job.id, job.token, b"1")]
            assert await producer.complete(queue, done, Retention(count=0)) == [True]
        srem = backend.redis.srem

        async def srem_after_others_act(key: str, *names: str) -> Any:
            await enqueue(producer, "jobbed", "second")
            await producer.upsert_schedule("scheduled", "nightly", b"{}", None, keep=False)
            return await srem(key, *names)

        backend.redis.srem = srem_after_others_act  # type: ignore[method-assign]
        assert [o.name for o in await backend.overview()] == ["jobbed", "scheduled"]
        backend.redis.srem = srem  # type: ignore[method-assign]
        assert await backend.queues() == ["jobbed", "scheduled"]
        listed = {o.name: o.counts["waiting"] for o in await backend.overview()}
        assert listed == {"jobbed": 1, "scheduled": 0}
    finally:
        await producer.close()
