"""The dashboard's live feed (``GET /live``) against a real server on loopback, on both
backends: counts after a real enqueue, job events, one backend subscription for many
tabs, closed tabs freed, a tab that reads nothing holding nobody up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from corral import Corral
from corral.backends.base import Completion, Retention
from corral.web.dashboard.live import TAB_JOB_EVENTS, LiveHub, Tab
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import API_KEYS, Event, LiveServer, Serve, sse_events, wait_until


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


def hub(server: LiveServer) -> LiveHub:
    live: LiveHub = server.server.config.app.state.corral_live
    live.interval = 0.1  # counts at most ten times a second, to keep the tests short
    return live


@contextlib.asynccontextmanager
async def tab(http: httpx.AsyncClient, query: str = "") -> AsyncIterator[AsyncIterator[Event]]:
    async with http.stream("GET", "/live" + (f"?{query}" if query else "")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield sse_events(response)


async def next_event(events: AsyncIterator[Event], name: str, timeout: float = 5.0) -> Event:
    async with asyncio.timeout(timeout):
        async for event in events:
            if event.name == name:
                return event
    raise AssertionError(f"the stream ended before a {name!r} event")


def row(event: Event, queue: str) -> dict[str, Any] | None:
    return next((r for r in event.data["queues"] if r["name"] == queue), None)


async def test_counts_arrive_after_a_real_enqueue(
    client: httpx.AsyncClient, corral: Corral, server: LiveServer
) -> None:
    hub(server)
    async with tab(client) as events:
        first = await next_event(events, "counts")  # the snapshot, on connecting
        assert row(first, QUEUE) is None
        await corral.enqueue("web.echo", [1])
        second = await next_event(events, "counts")
        assert row(second, QUEUE) == {
            "name": QUEUE,
            "waiting": 1,
            "delayed": 0,
            "active": 0,
            "completed": 0,
            "failed": 0,
            "cancelled": 0,
            "blocked": 0,
            "paused": False,
            "workers": 0,
            "healthy": False,
            "reason": "jobs waiting and no live worker serves the queue",
        }


async def test_counts_are_sent_only_when_they_changed(
    client: httpx.AsyncClient, corral: Corral, server: LiveServer
) -> None:
    live = hub(server)
    async with tab(client) as events:
        job = await corral.enqueue("web.echo", [1])
        while (await next_event(events, "counts")).data["queues"] == []:
            pass
        backend = await corral.backend()
        claimed, _ = await backend.claim(QUEUE, 1, 30_000, "w")
        active = await next_event(events, "counts")
        assert (row(active, QUEUE) or {}).get("active") == 1
        # A progress report is an event that changes no count: the counts are read
        # again (once for every tab), and not sent.
        reads = live.reads
        await backend.update(QUEUE, job.id, claimed[0].token, progress=b"1")
        await wait_until(lambda: live.reads > reads)
        await corral.enqueue("web.echo", [2])
        after = await next_event(events, "counts")
        assert (
            (row(after, QUEUE) or {}).get("waiting"),
            (row(after, QUEUE) or {}).get("active"),
        ) == (1, 1)


async def test_a_watched_job_gets_job_events(
    client: httpx.AsyncClient, corral: Corral, server: LiveServer
) -> None:
    hub(server)
    async with tab(client, f"job={QUEUE}/watched&counts=0") as events:
        await corral.enqueue("web.echo", [1], job_id="other")
        await corral.enqueue("web.echo", [1], job_id="watched")
        event = await next_event(events, "job")
        assert event.data == {"queue": QUEUE, "id": "watched", "event": "added"}


async def test_many_tabs_share_one_backend_subscription(
    client: httpx.AsyncClient, server: LiveServer, url: str
) -> None:
    live = hub(server)
    async with contextlib.AsyncExitStack() as stack:
        for i in range(30):
            await stack.enter_async_context(tab(client, f"job={QUEUE}/j{i % 3}"))
        await wait_until(lambda: len(live.tabs) == 30)
        assert live.running and len(live.watchers) == 3
        assert live.feed is not None and live.feed.subscriptions == 1
        scraped = (await client.get("/metrics")).text
        assert "corral_dashboard_live_tabs 30.0" in scraped
        assert "corral_event_subscriptions 1.0" in scraped
        if url.startswith("redis"):
            redis = aioredis.Redis.from_url(url)
            try:
                assert await redis.pubsub_numpat() == 1
                clients = await redis.client_list()
                assert sum(1 for c in clients if int(c["psub"]) > 0) == 1
            finally:
                await redis.aclose()
    # Every tab closed: the hub lets go of its subscription and its tasks.
    await wait_until(lambda: not live.tabs and not live.watchers and not live.running)
    assert live.feed.subscriptions == 0 and live.feed.consumers == 0
    if url.startswith("redis"):
        redis = aioredis.Redis.from_url(url)
        try:
            await wait_until(lambda: _numpat_is_zero(redis))
        finally:
            await redis.aclose()


async def _numpat_is_zero(redis: aioredis.Redis) -> bool:
    return int(await redis.pubsub_numpat()) == 0


async def test_closing_a_tab_frees_its_resources(
    client: httpx.AsyncClient, corral: Corral, server: LiveServer
) -> None:
    live = hub(server)
    async with tab(client, f"job={QUEUE}/a&job={QUEUE}/b") as events:
        await next_event(events, "counts")
        assert len(live.tabs) == 1 and set(live.watchers) == {(QUEUE, "a"), (QUEUE, "b")}
    await wait_until(lambda: not live.tabs and not live.watchers and not live.running)
    # A client gone before reading a byte leaves nothing behind either.
    for _ in range(5):
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        writer.close()
    await wait_until(lambda: not live.tabs and not live.running)


async def test_the_hub_says_stopped_only_once_its_subscription_is_released(
    corral: Corral,
) -> None:
    # What a caller may count on when the hub stops: the feed is free. Stepping the
    # loop one turn at a time catches a hub that says so early (seen from the server's
    # thread, test_many_tabs_share_one_backend_subscription caught it now and then).
    live = LiveHub(corral)
    only = Tab(False, frozenset())
    await live.join(only)
    feed = live.feed
    assert feed is not None and live.running and feed.subscriptions == 1
    live.leave(only)
    async with asyncio.timeout(5):
        while live.running:
            await asyncio.sleep(0)
    assert feed.subscriptions == 0 and feed.consumers == 0


async def test_live_requires_a_session_and_checks_its_input(serve: Serve, url: str) -> None:
    server = serve(build_app(url), api_keys=API_KEYS)
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False) as http:
        refused = await http.get("/live")
        assert refused.status_code == 401 and "log in" in refused.text
    unauthenticated = serve(build_app(url))
    async with httpx.AsyncClient(base_url=unauthenticated.url) as http:
        for query, message in [
            ("job=nojobid", "expected <queue>/<id>"),
            ("job=bad queue/x", "queue"),
            ("&".join(f"job=q/{i}" for i in range(21)), "at most 20 jobs"),
        ]:
            answer = await http.get(f"/live?{query}")
            assert answer.status_code == 422, query
            assert message in answer.text, (query, answer.text)
    assert not hub(server).tabs and not hub(unauthenticated).tabs


async def test_a_tab_that_reads_nothing_holds_a_bounded_buffer_and_blocks_no_other(
    corral: Corral,
) -> None:
    live = LiveHub(corral, interval=0.05)
    jobs = frozenset({(QUEUE, "j1"), (QUEUE, "j2")})
    stuck, reader = Tab(False, jobs), Tab(False, jobs)
    await live.join(stuck)
    await live.join(reader)
    seen: list[dict[str, str]] = []

    async def read() -> None:
        while True:
            seen.extend(await reader.next())

    reading = asyncio.create_task(read())
    try:
        backend = await corral.backend()
        await corral.enqueue("web.echo", [1], job_id="j1")
        await corral.enqueue("web.echo", [1], job_id="j2")
        claimed, _ = await backend.claim(QUEUE, 2, 30_000, "w")
        tokens = {job.id: job.token for job in claimed}
        for i in range(150):  # alternating jobs: nothing to coalesce
            for job_id, token in tokens.items():
                await backend.update(QUEUE, job_id, token, progress=str(i).encode())
        done = [Completion(job_id, token, b"1") for job_id, token in tokens.items()]
        await backend.complete(QUEUE, done, Retention())
        await wait_until(lambda: sum('"completed"' in e["data"] for e in seen) == 2)
        assert stuck.pending <= TAB_JOB_EVENTS
        assert "resync" in stuck.peek(), stuck.peek()
    finally:
        reading.cancel()
        live.leave(stuck)
        live.leave(reader)
        await live.close()


async def test_a_gap_upstream_makes_every_watcher_resync(corral: Corral) -> None:
    live = LiveHub(corral)
    watching = Tab(False, frozenset({(QUEUE, "j1")}))
    await live.join(watching)
    try:
        subscription = live._subscription
        assert subscription is not None
        subscription.lost()  # what the feed does for a lost Redis connection
        await wait_until(lambda: watching.peek() == ["resync"])
    finally:
        live.leave(watching)
        await live.close()


async def test_a_store_that_cannot_be_reached_answers_503_and_holds_no_tab(serve: Serve) -> None:
    import socket

    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
        server = serve(build_app(dead, reconnect_timeout=0.2))
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            answer = await http.get("/live")
        assert answer.status_code == 503, answer.text
        assert not hub(server).tabs and not hub(server).running
