"""Queue streams share one subscription per queue (corral.web.fanout): a listener that
stops reading falls behind, gets ``resync`` and is closed, and never holds up the
others, which get every event in order. Real server, real sockets, SQLite and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from corral.web import create_app, fanout
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import Event, LiveServer, sse_events

#: Jobs enqueued per bulk request, and requests: 10,000 "added" events (~600 KB of
#: SSE), far more than the stalled client's socket buffers and the feed's backlog hold.
BATCH = 1000
BATCHES = 10


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


class StalledClient:
    """A raw HTTP/1.0 SSE client with a small receive buffer that reads the response
    headers and then nothing until :meth:`read_rest` (so the server's writes to it
    block once the socket buffers are full)."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(15)
        self.sock.connect(("127.0.0.1", port))
        request = f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        self.sock.sendall(request.encode())
        self.data = b""
        while b"\r\n\r\n" not in self.data:
            chunk = self.sock.recv(4096)
            assert chunk, "the server closed the stream before its headers"
            self.data += chunk
        head, _, self.data = self.data.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].split()[1] == b"200", head

    def read_rest(self) -> list[Event]:
        """Everything until the server closes the connection (or sends nothing for 5
        s: then the last event is not ``resync``), parsed."""
        self.sock.settimeout(5)
        with contextlib.suppress(TimeoutError):
            while chunk := self.sock.recv(65536):
                self.data += chunk
        self.sock.close()
        events: list[Event] = []
        for block in self.data.replace(b"\r\n", b"\n").split(b"\n\n"):
            fields = dict(
                line.split(": ", 1) for line in block.decode().split("\n") if ": " in line
            )
            if "data" in fields:
                events.append(Event(fields.get("event", "message"), json.loads(fields["data"])))
        return events


@pytest.fixture
def small_buffers_server(url: str) -> Iterator[LiveServer]:
    """The API on a listening socket whose accepted connections have a small send
    buffer (Linux copies it to them): a client that stops reading blocks the server's
    writes after some 100 KB instead of the megabytes loopback autotuning allows."""
    server = LiveServer(create_app(build_app(url)))
    server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    server.start()
    yield server
    server.stop()
    server.join()


async def test_a_stalled_listener_resyncs_and_never_holds_up_the_others(
    small_buffers_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backlog above one request's burst of events (listeners that keep up never
    # fall behind) and far below what the stalled client lets pile up.
    monkeypatch.setattr(fanout, "BACKLOG", 2 * BATCH)
    server = small_buffers_server
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
        await _stalled_listener(server, client)


async def _stalled_listener(server: LiveServer, client: httpx.AsyncClient) -> None:
    path = f"/api/v1/queues/{QUEUE}/events"
    stalled = await asyncio.to_thread(StalledClient, server.port, path)
    received: list[list[Event]] = [[], [], []]
    enqueued: list[str] = []

    async def listen(into: list[Event]) -> None:
        async with client.stream("GET", path) as response:
            assert response.status_code == 200
            opened.release()
            async for event in sse_events(response):
                into.append(event)

    opened = asyncio.Semaphore(0)
    listeners = [asyncio.create_task(listen(into)) for into in received]
    try:
        for _ in listeners:
            await asyncio.wait_for(opened.acquire(), 10)
        for batch in range(BATCHES):
            jobs = [{"task": "web.echo", "args": [batch * BATCH + i]} for i in range(BATCH)]
            answer = await client.post("/api/v1/jobs/bulk", json={"jobs": jobs})
            assert answer.status_code == 201, answer.text
            enqueued += [job["id"] for job in answer.json()["jobs"]]
            # The listeners that read keep up, whatever the stalled one does.
            async with asyncio.timeout(15):
                while min(len(events) for events in received) < len(enqueued):
                    await asyncio.sleep(0.01)
            assert (await client.get("/healthz")).status_code == 200
    finally:
        for task in listeners:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    for events in received:
        assert [e.name for e in events] == ["added"] * len(enqueued)
        assert [e.data["id"] for e in events] == enqueued  # every event, in order

    rest = await asyncio.to_thread(stalled.read_rest)  # ends: the server closed it
    assert rest, "the stalled stream sent nothing"
    assert rest[-1].name == "resync", [e.name for e in rest[-3:]]
    assert "behind" in rest[-1].data["error"]
    assert "open a new stream" in rest[-1].data["error"]
    shown = rest[:-1]
    assert all(e.name == "added" for e in shown)
    # What it did get is the start of the same sequence, then nothing was made up.
    assert [e.data["id"] for e in shown] == enqueued[: len(shown)]
    assert len(shown) < len(enqueued) - fanout.BACKLOG


async def test_listeners_of_one_queue_share_one_subscription(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    # Queue streams and job streams of the same queue: one subscription between them.
    created = await client.post("/api/v1/jobs", json={"task": "web.echo", "delay": 3600})
    assert created.status_code == 201
    paths = [f"/api/v1/queues/{QUEUE}/events"] * 3
    paths += [f"/api/v1/queues/{QUEUE}/jobs/{created.json()['id']}/events"] * 2
    feeds = server.server.config.app.state.corral_settings.feeds
    async with contextlib.AsyncExitStack() as streams:
        for path in paths:
            response = await streams.enter_async_context(client.stream("GET", path))
            assert response.status_code == 200
        assert list(feeds._feeds) == [QUEUE]
        assert feeds._feeds[QUEUE].listeners == 5
    async with asyncio.timeout(5):
        while feeds._feeds:  # the last listener out closes the subscription
            await asyncio.sleep(0.02)
