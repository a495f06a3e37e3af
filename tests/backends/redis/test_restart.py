"""redis-server SIGKILLed and restarted on the same port under load.

An outage shorter than ``reconnect_timeout`` costs callers latency, not errors: every
acknowledged enqueue is stored exactly once, a ``job.result()`` wait returns, and the
log says once that the connection was lost and once that it is back.

The server runs with ``appendfsync always``: with ``everysec`` Redis itself may
acknowledge a write it has not yet handed to the kernel (it postpones the write for up
to 2 s while a slow fsync runs), and a SIGKILL then loses it whatever the client does.
chaos/scenarios/redis_faults.py runs the everysec case, with that loss bound.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from chaos.harness import RedisProc

from corral import Corral
from corral.backends.base import NewJob
from corral.backends.redis import RedisBackend
from corral.errors import ConnectionFailed
from corral.task import new_job_id
from corral.web import create_app
from corral.worker import Worker
from tests.web.apps import build_app
from tests.web.conftest import LiveServer


async def restart(server: RedisProc, down: float = 0.0) -> None:
    """SIGKILL the server, leave it down ``down`` seconds, start it again."""
    await asyncio.to_thread(server.kill)
    await asyncio.sleep(down)
    await asyncio.to_thread(server.start)  # returns once the AOF is loaded


def connection_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (r.levelno, r.getMessage().split(" (")[0])
        for r in caplog.records
        if r.name.startswith("corral") and r.levelno >= logging.INFO
    ]


LOST_AND_BACK = [
    (logging.WARNING, "lost the connection to Redis at {url}"),
    (logging.INFO, "the connection to Redis at {url} is back"),
]


async def test_enqueues_ride_out_a_restart_and_each_is_stored_once(
    aof_redis: RedisProc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corral")
    backend = RedisBackend(aof_redis.url)
    await backend.connect()
    acked: list[str] = []
    errors: list[Exception] = []
    stop = asyncio.Event()

    async def produce() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            given = n % 2 == 0  # half with the caller's id, half random
            job = NewJob(
                id=f"given-{n}" if given else new_job_id(),
                name="t",
                data=b"[[],{}]",
                given_id=given,
            )
            try:
                assert await backend.enqueue("q", [job]) == [None]
                acked.append(job.id)
            except Exception as exc:
                errors.append(exc)

    async def acked_more(count: int) -> None:
        target = len(acked) + count
        while len(acked) < target:
            await asyncio.sleep(0.01)

    producer = asyncio.create_task(produce())
    try:
        await acked_more(50)
        await restart(aof_redis)
        await acked_more(50)
    finally:
        stop.set()
        await producer
    try:
        assert errors == []
        counts = await backend.counts("q")
        assert counts["waiting"] == len(acked) == len(set(acked))  # none twice, none lost
        records = [await backend.get("q", job_id) for job_id in acked]
        assert all(record is not None for record in records)
        expected = [(level, text.format(url=aof_redis.url)) for level, text in LOST_AND_BACK]
        assert connection_lines(caplog) == expected
    finally:
        await backend.close()


async def test_a_worker_and_a_result_wait_ride_out_a_restart(
    aof_redis: RedisProc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corral")
    app = Corral(aof_redis.url)
    running = asyncio.Event()
    release = asyncio.Event()

    @app.task(queue="q", name="slow")
    async def slow(x: int) -> int:
        running.set()
        await release.wait()
        return 2 * x

    worker = Worker(app, ["q"], block=1.0, grace=2.0)
    worker_run = asyncio.create_task(worker.run())
    try:
        job = await slow.enqueue(21)
        result = asyncio.create_task(job.result(timeout=30))
        await asyncio.wait_for(running.wait(), 10)
        await restart(aof_redis)
        release.set()  # the job finishes after the restart
        assert await asyncio.wait_for(result, 30) == 42
        after = await slow.enqueue(1)  # the worker still takes new jobs
        assert await after.result(timeout=10) == 2
        worker.stop()
        await asyncio.wait_for(worker_run, 10)
        # The worker said nothing but that the connection was lost, and is back.
        expected = [(level, text.format(url=aof_redis.url)) for level, text in LOST_AND_BACK]
        assert [line for line in connection_lines(caplog) if "Redis" in line[1]] == expected
        assert [line for line in connection_lines(caplog) if line[0] >= logging.WARNING] == [
            expected[0]
        ]
    finally:
        worker.stop()
        await asyncio.gather(worker_run, return_exceptions=True)
        await app.close()


async def test_an_outage_longer_than_reconnect_timeout_raises_connection_failed(
    aof_redis: RedisProc,
) -> None:
    backend = RedisBackend(aof_redis.url, reconnect_timeout=0.3)
    await backend.connect()
    try:
        await asyncio.to_thread(aof_redis.kill)
        with pytest.raises(ConnectionFailed, match="cannot reach Redis"):
            await backend.counts("q")
        await asyncio.to_thread(aof_redis.start)
        assert (await backend.counts("q"))["waiting"] == 0  # and works once it is back
    finally:
        await backend.close()


async def test_the_http_api_rides_out_a_restart(
    aof_redis: RedisProc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corral")
    server = LiveServer(create_app(build_app(aof_redis.url))).start()
    statuses: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def post() -> None:
                response = await http.post("/api/v1/jobs", json={"task": "web.echo"})
                statuses.append(response.status_code)

            await post()  # connected
            restarting = asyncio.create_task(restart(aof_redis))
            while not restarting.done():
                await post()
            await restarting
            await post()
    finally:
        server.stop()
        server.join()
    assert set(statuses) == {201}
    expected = [(level, text.format(url=aof_redis.url)) for level, text in LOST_AND_BACK]
    assert connection_lines(caplog) == expected  # requests were made while it was down


@pytest.mark.parametrize(
    ("reconnect_timeout", "down"),
    [(5.0, 0.5), (1.0, 2.0)],
    ids=["shorter-than-reconnect-timeout", "twice-reconnect-timeout"],
)
async def test_a_worker_logs_one_lost_and_one_back_line_per_outage(
    aof_redis: RedisProc, caplog: pytest.LogCaptureFixture, reconnect_timeout: float, down: float
) -> None:
    """However long the outage, the worker's loops (fetch, acks, leases, reaper,
    heartbeat, scheduler, pub/sub) say it once when it begins and once when it ends."""
    caplog.set_level(logging.INFO, logger="corral")
    app = Corral(aof_redis.url, reconnect_timeout=reconnect_timeout)

    @app.task(queue="q", name="double")
    async def double(x: int) -> int:
        return 2 * x

    @app.task(queue="q", name="tick", every=1)  # the scheduler loop runs too
    async def tick() -> None:
        return None

    worker = Worker(app, ["q"], block=0.2, heartbeat=0.2, lease=1.0)
    worker_run = asyncio.create_task(worker.run())
    try:
        assert await (await double.enqueue(1)).result(timeout=10) == 2
        await restart(aof_redis, down)
        assert await (await double.enqueue(2)).result(timeout=10) == 4  # still working
        worker.stop()
        await asyncio.wait_for(worker_run, 10)
    finally:
        worker.stop()
        await asyncio.gather(worker_run, return_exceptions=True)
        await app.close()
    expected = [(level, text.format(url=aof_redis.url)) for level, text in LOST_AND_BACK]
    assert [line for line in connection_lines(caplog) if "Redis" in line[1]] == expected
    assert [line for line in connection_lines(caplog) if line[0] >= logging.WARNING] == [
        expected[0]
    ]


async def test_a_result_wait_started_while_redis_is_down_returns(
    aof_redis: RedisProc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corral")
    app = Corral(aof_redis.url)

    @app.task(queue="q", name="double")
    async def double(x: int) -> int:
        return 2 * x

    job = await double.enqueue(21)
    worker = Worker(app, ["q"], block=0.2)
    worker_run: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(aof_redis.kill)
        result = asyncio.create_task(job.result(timeout=10))  # begins while Redis is down
        await asyncio.sleep(0.5)
        await asyncio.to_thread(aof_redis.start)
        worker_run = asyncio.create_task(worker.run())
        assert await result == 42
    finally:
        worker.stop()
        if worker_run is not None:
            await asyncio.gather(worker_run, return_exceptions=True)
        await app.close()
    expected = [(level, text.format(url=aof_redis.url)) for level, text in LOST_AND_BACK]
    assert connection_lines(caplog)[:2] == expected


async def logged(caplog: pytest.LogCaptureFixture, text: str) -> None:
    while not any(text in r.getMessage() for r in caplog.records):
        await asyncio.sleep(0.01)


async def test_a_connection_busy_when_the_outage_began_is_not_found_dead_after_it(
    aof_redis: RedisProc, caplog: pytest.LogCaptureFixture
) -> None:
    """A pooled connection checked out across the kill (a pipeline between its reply
    and its release) and returned during the outage must not start a second outage."""
    caplog.set_level(logging.INFO, logger="corral")
    backend = RedisBackend(aof_redis.url)
    await backend.connect()
    try:
        stop_watching = await backend.watch_cancellations(["q"], lambda queue, job_id: None)
        pool = backend.redis.connection_pool
        busy = await pool.get_connection()
        await asyncio.to_thread(aof_redis.kill)
        await asyncio.wait_for(logged(caplog, "lost the connection"), 10)  # pub/sub noticed
        await pool.release(busy)  # on top of the idle ones: the next pipeline takes it
        await asyncio.to_thread(aof_redis.start)
        await asyncio.wait_for(logged(caplog, "is back"), 10)  # pub/sub subscribed again
        assert (await backend.counts("q"))["waiting"] == 0
        await stop_watching()
    finally:
        await backend.close()
    expected = [(level, text.format(url=aof_redis.url)) for level, text in LOST_AND_BACK]
    assert connection_lines(caplog) == expected
