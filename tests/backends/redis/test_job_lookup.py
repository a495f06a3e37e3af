"""Finding a job by id alone on Redis: a fixed number of round trips whatever the
number of queues."""

from __future__ import annotations

from corral import Corral
from corral.backends.redis import RedisBackend
from tests.backends.redis.test_queue_listing import RoundTrips
from tests.contract.conftest import enqueue


async def test_lookup_without_a_queue_costs_the_same_for_three_queues_or_forty(
    redis_url: str,
) -> None:
    app = Corral(redis_url)
    try:
        backend = await app.backend()
        assert isinstance(backend, RedisBackend)
        for i in range(3):
            await enqueue(backend, f"few{i}", f"job{i}")
        trips = RoundTrips(backend.redis)
        few = await trips.of(lambda: app.get_job("job2"))
        for i in range(3, 40):
            await enqueue(backend, f"many{i}", f"job{i}")
        many = await trips.of(lambda: app.get_job("job39"))
        assert (await app.get_job("job39")).queue == "many39"
        # The queue names (a command), an EXISTS on each (a pipeline), the job's read
        # (three commands, sent together on the shared connection: one round trip).
        assert few == (4, 1)
        assert many == few
    finally:
        await app.close()
