"""The API under load and trouble (Redis): a stored job is never reported as failed,
every 5xx logs one line with its cause (logger ``corral.web``), waits keep their
timeout after a refused SUBSCRIBE, and closed streams leave no channel subscribed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

import httpx
import pytest

from corral import Corral
from tests.redis_server import RedisServer
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import Serve, Workers, sse_events

STREAMS = 150  # more than redis-py's pool of 100 connections
POSTS = 300


@pytest.fixture
def url(redis_url: str) -> str:
    return redis_url


@pytest.mark.slow
async def test_enqueues_under_many_event_streams_all_answer_201(
    serve: Serve, url: str, corral: Corral, workers: Workers
) -> None:
    server = serve(build_app(url))
    limits = httpx.Limits(max_connections=STREAMS + 50)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
        created = await client.post(
            "/api/v1/jobs", json={"task": "web.progress", "kwargs": {"steps": 40, "pause": 0.02}}
        )
        job_id = created.json()["id"]
        opened = asyncio.Semaphore(0)
        ends: list[str] = []

        async def follow() -> None:
            path = f"/api/v1/queues/{QUEUE}/jobs/{job_id}/events"
            async with client.stream("GET", path) as response:
                async for event in sse_events(response):
                    if event.name == "state" and event.data["state"] == "waiting":
                        opened.release()
                    if event.name == "end":
                        ends.append(event.data["state"])

        streams = [asyncio.create_task(follow()) for _ in range(STREAMS)]
        for _ in range(STREAMS):
            await asyncio.wait_for(opened.acquire(), 30)
        # Every progress report now makes every stream re-read the job at once.
        workers.start()
        posts = [
            client.post("/api/v1/jobs", json={"task": "web.echo", "args": [i]})
            for i in range(POSTS)
        ]
        answers = await asyncio.gather(*posts)
        followed = await asyncio.wait_for(asyncio.gather(*streams, return_exceptions=True), 60)

    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: POSTS}, {
        a.status_code: a.text for a in answers if a.status_code != 201
    }
    assert [f for f in followed if f is not None] == []
    assert ends == ["completed"] * STREAMS


async def test_every_5xx_logs_one_line_with_its_cause(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    redis = RedisServer().start()
    # How long a call rides out the outage is not this test's promise: a short budget
    # keeps the three failing requests from waiting out the 5 s default each.
    server = serve(build_app(redis.url, reconnect_timeout=0.3))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await client.post("/api/v1/jobs", json={"task": "web.echo"})).status_code == 201
        redis.stop()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="corral.web"):
            answers = [
                await client.post("/api/v1/jobs", json={"task": "web.echo"}),
                await client.get(f"/api/v1/queues/{QUEUE}/jobs/nope"),
                await client.get("/readyz"),
            ]
    assert [a.status_code for a in answers] == [503, 503, 503]
    lines = [r for r in caplog.records if r.name == "corral.web"]
    assert len(lines) == 3, [r.getMessage() for r in lines]
    for record, path in zip(
        lines, ["POST /api/v1/jobs", "GET /api/v1/queues", "GET /readyz"], strict=True
    ):
        message = record.getMessage()
        assert "\n" not in message and record.exc_info is None
        assert message.startswith(f"503 {path}"), message
        assert "Redis" in message  # the cause, not just the status


async def test_a_stored_job_is_answered_201_even_if_its_re_read_fails(
    serve: Serve, redis_url: str
) -> None:
    import redis as sync_redis

    admin = sync_redis.Redis.from_url(redis_url)
    # This user may enqueue (the scripts) but not read a job hash back.
    admin.execute_command("ACL", "SETUSER", "noread", "on", ">pw", "~*", "&*", "+@all", "-hgetall")
    port = redis_url.split(":")[-1].split("/")[0]
    try:
        server = serve(build_app(f"redis://noread:pw@127.0.0.1:{port}/0"))
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            answer = await client.post("/api/v1/jobs", json={"task": "web.echo", "args": [1]})
        assert answer.status_code == 201, answer.text
        job = answer.json()
        assert job["state"] == "waiting" and job["created"] is True
        stored = admin.hmget(f"corral:{{{QUEUE}}}:j:{job['id']}", "name", "state")
        assert stored == [b"web.echo", None]  # a waiting job stores no state (add_job.lua)
    finally:
        admin.execute_command("ACL", "DELUSER", "noread")
        admin.close()


async def test_a_long_poll_after_a_refused_subscribe_keeps_its_timeout_and_recovers(
    serve: Serve, redis_url: str, workers: Workers
) -> None:
    import redis as sync_redis

    admin = sync_redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", "nosub", "on", ">pw", "~*", "&*", "+@all", "-subscribe")
    port = redis_url.split(":")[-1].split("/")[0]
    try:
        server = serve(build_app(f"redis://nosub:pw@127.0.0.1:{port}/0"))
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            job = (await client.post("/api/v1/jobs", json={"task": "web.echo"})).json()
            path = f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/result"
            started = time.monotonic()
            refused = await client.get(path, params={"timeout": 1})
            assert time.monotonic() - started < 3.0
            assert refused.status_code in (202, 503), refused.text
            admin.execute_command("ACL", "SETUSER", "nosub", "+subscribe")
            workers.start()
            done = await client.get(path, params={"timeout": 10})
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "completed"
    finally:
        admin.execute_command("ACL", "DELUSER", "nosub")
        admin.close()


async def test_closed_event_streams_leave_no_channel_subscribed(
    serve: Serve, redis_url: str
) -> None:
    import redis as sync_redis

    admin = sync_redis.Redis.from_url(redis_url)
    server = serve(build_app(redis_url))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for i in range(30):
                async with client.stream("GET", f"/api/v1/queues/q{i}/events") as response:
                    assert response.status_code == 200
                    assert len(admin.pubsub_channels()) >= 1
        deadline = time.monotonic() + 10
        while admin.pubsub_channels():
            assert time.monotonic() < deadline, admin.pubsub_channels()[:5]
            await asyncio.sleep(0.05)
    finally:
        admin.close()
