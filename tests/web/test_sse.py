"""Server-Sent Events over a real connection (SQLite and Redis)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
import redis.asyncio

from tests.web.apps import QUEUE
from tests.web.conftest import Event, Workers, sse_events


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


async def test_job_stream_sends_state_progress_then_end_and_closes(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    created = await client.post(
        "/api/v1/jobs", json={"task": "web.progress", "kwargs": {"steps": 5, "pause": 0.05}}
    )
    assert created.status_code == 201
    job_id = created.json()["id"]
    received: list[Event] = []

    async def follow() -> None:
        path = f"/api/v1/queues/{QUEUE}/jobs/{job_id}/events"
        async with client.stream("GET", path) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for event in sse_events(response):
                received.append(event)
                if len(received) == 1:
                    workers.start()  # the job runs only once the stream is open
        # leaving the loop means the server closed the stream by itself

    await asyncio.wait_for(follow(), 20)

    names = [e.name for e in received]
    assert names[0] == "state", names
    assert received[0].data["id"] == job_id
    assert received[0].data["state"] == "waiting"
    assert names[-1] == "end", names
    assert received[-1].data["state"] == "completed"
    assert received[-1].data["result"] == 5
    assert set(names) <= {"state", "progress", "end"}, names
    progress = [e.data["progress"] for e in received if e.name == "progress"]
    assert progress, names
    assert progress == sorted(set(progress)), progress  # strictly increasing
    assert progress[-1] == 5
    assert all(e.data["id"] == job_id for e in received if e.name == "progress")
    first_progress = names.index("progress")
    assert "end" not in names[:first_progress]


async def test_job_stream_of_a_finished_job_ends_at_once(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    workers.start()
    created = await client.post("/api/v1/jobs", json={"task": "web.echo", "args": [1]})
    job_id = created.json()["id"]
    done = await client.get(f"/api/v1/queues/{QUEUE}/jobs/{job_id}/result", params={"timeout": 10})
    assert done.status_code == 200

    async def collect() -> list[Event]:
        path = f"/api/v1/queues/{QUEUE}/jobs/{job_id}/events"
        async with client.stream("GET", path) as response:
            return [event async for event in sse_events(response)]

    events = await asyncio.wait_for(collect(), 10)
    assert [e.name for e in events] == ["state", "end"]
    assert events[-1].data["state"] == "completed"


async def test_job_stream_ends_when_the_job_is_removed(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/jobs", json={"task": "web.echo", "delay": 3600})
    job_id = created.json()["id"]
    received: list[Event] = []

    async def follow() -> None:
        path = f"/api/v1/queues/{QUEUE}/jobs/{job_id}/events"
        async with client.stream("GET", path) as response:
            async for event in sse_events(response):
                received.append(event)
                if len(received) == 1:
                    deleted = await client.delete(f"/api/v1/queues/{QUEUE}/jobs/{job_id}")
                    assert deleted.status_code == 204

    await asyncio.wait_for(follow(), 10)
    assert [e.name for e in received] == ["state", "end"]
    assert received[0].data["state"] == "delayed"
    assert received[-1].data == {"id": job_id, "state": "removed"}


async def test_job_stream_of_an_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/queues/{QUEUE}/jobs/ghost/events")
    assert response.status_code == 404
    assert "ghost" in response.json()["error"]


async def test_queue_stream_sends_lifecycle_events_of_a_new_job(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    seen: list[Event] = []
    job_id: str | None = None

    async def follow() -> None:
        nonlocal job_id
        async with client.stream("GET", f"/api/v1/queues/{QUEUE}/events") as response:
            assert response.status_code == 200
            # Headers arrive once the server has subscribed: enqueue only now.
            created = await client.post("/api/v1/jobs", json={"task": "web.echo", "args": [2]})
            assert created.status_code == 201
            job_id = created.json()["id"]
            workers.start()
            async for event in sse_events(response):
                seen.append(event)
                if event.name == "completed" and event.data["id"] == job_id:
                    return  # closing the stream from our side

    await asyncio.wait_for(follow(), 15)
    mine = [e.name for e in seen if e.data.get("id") == job_id]
    assert mine[:1] == ["added"], mine
    assert "active" in mine
    assert mine[-1] == "completed"
    assert mine.index("added") < mine.index("active") < mine.index("completed")


async def test_queue_stream_can_be_closed_by_the_client(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", f"/api/v1/queues/{QUEUE}/events") as response:
        assert response.status_code == 200  # subscribed; closed unread
    # The server is still fine after the client went away.
    assert (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize("backend_url", ["redis"], indirect=True)
async def test_closed_streams_leave_no_subscription_behind(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    # Queue streams and job streams, each on a queue of its own: every one subscribes
    # the server to a channel, and closing it must give that subscription back.
    paths = [f"/api/v1/queues/leak-q{n}/events" for n in range(10)]
    for n in range(10):
        created = await client.post(
            "/api/v1/jobs", json={"task": "web.echo", "queue": f"leak-j{n}", "delay": 3600}
        )
        assert created.status_code == 201
        paths.append(f"/api/v1/queues/leak-j{n}/jobs/{created.json()['id']}/events")
    store = redis.asyncio.Redis.from_url(redis_url)
    try:
        baseline = set(await store.pubsub_channels())
        async with contextlib.AsyncExitStack() as streams:
            for path in paths:
                response = await streams.enter_async_context(client.stream("GET", path))
                assert response.status_code == 200  # headers come once subscribed
            opened = set(await store.pubsub_channels()) - baseline
            assert len(opened) >= len(paths), opened  # what the check below watches
        # The server notices each disconnect and unsubscribes.
        left = opened
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while left:
                    await asyncio.sleep(0.05)
                    left = set(await store.pubsub_channels()) - baseline
        assert left == set(), f"{len(left)} of {len(opened)} channels still subscribed"
    finally:
        await store.aclose()


async def test_queue_stream_of_an_invalid_queue_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/queues/a%20b/events")
    assert response.status_code == 422
    assert "queue" in response.json()["error"]
