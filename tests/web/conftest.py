"""A real uvicorn server (in a thread, on a free loopback port) serving
``create_app(corral, ...)``, in-process workers on the test's event loop, and an
httpx client against the server."""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from corral import Corral
from corral.web import create_app
from corral.worker import Worker
from tests.web.apps import QUEUE, build_app

READ_KEY = "read-key-0123456789abcdef"
WRITE_KEY = "write-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
API_KEYS = {READ_KEY: "read", WRITE_KEY: "write", ADMIN_KEY: "admin"}


class LiveServer:
    """uvicorn serving an ASGI app on 127.0.0.1:<free port> from a background thread."""

    def __init__(self, app: Any) -> None:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only
        # when the listening socket says so; without it each response waits ~40 ms
        # for a delayed ACK (Nagle).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            # uvicorn closes a keep-alive connection idle for 5 s by default; a client
            # that reuses it at that moment gets a ReadError (a race of HTTP keep-alive,
            # not of the API), which a loaded test machine makes likely.
            timeout_keep_alive=60,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the uvicorn server thread died while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the uvicorn server did not start within 10 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask the server to exit (it finishes within ~0.2 s); :meth:`join` waits."""
        self.server.should_exit = True

    def join(self) -> None:
        self.thread.join(10)
        self.sock.close()
        assert not self.thread.is_alive(), "the uvicorn server did not stop within 10 s"


Serve = Callable[..., LiveServer]

#: Servers told to exit but not yet joined. uvicorn takes 0.1-0.2 s to shut down (its
#: main loop ticks every 0.1 s, then it sleeps 0.1 s): joining each at its test's
#: teardown would add that to every test, so they finish in the background and are
#: joined a few tests later, and all of them at the end of the session.
_STOPPING: list[LiveServer] = []
_MAX_STOPPING = 4


@pytest.fixture(scope="session", autouse=True)
def _join_servers() -> Iterator[None]:
    yield
    while _STOPPING:
        _STOPPING.pop(0).join()


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(corral, **create_app_options)`` -> a started LiveServer (stopped at teardown)."""
    started: list[LiveServer] = []

    def start(corral: Corral, **options: Any) -> LiveServer:
        server = LiveServer(create_app(corral, **options)).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()
        _STOPPING.append(server)
    while len(_STOPPING) > _MAX_STOPPING:
        _STOPPING.pop(0).join()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'web.db'}"


@pytest.fixture(params=["sqlite", "redis"])
def backend_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """The main flow tests run against both backends."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return sqlite_url


@pytest.fixture
def url(sqlite_url: str) -> str:
    """The backend URL of a test; SQLite unless a module overrides it with backend_url."""
    return sqlite_url


@pytest.fixture
def server(serve: Serve, url: str) -> LiveServer:
    """The API, without authentication, for the app of ``url``."""
    return serve(build_app(url))


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        yield http


@pytest.fixture
async def corral(url: str) -> AsyncIterator[Corral]:
    """The test's own app instance on the same backend (for workers and direct checks)."""
    app = build_app(url)
    try:
        yield app
    finally:
        await app.close()


class Workers:
    """In-process workers: ``start`` runs ``Worker.run()`` as a task of the test's loop."""

    def __init__(self, app: Corral) -> None:
        self.app = app
        self.tasks: dict[Worker, asyncio.Task[None]] = {}

    def start(self, queues: Sequence[str] = (QUEUE,), **options: Any) -> Worker:
        options.setdefault("grace", 1.0)
        options.setdefault("block", 0.5)
        options.setdefault("heartbeat", 0.5)
        worker = Worker(self.app, list(queues), **options)
        self.tasks[worker] = asyncio.create_task(worker.run(), name="web-test-worker")
        return worker

    async def stop(self, worker: Worker, timeout: float = 10.0) -> None:
        task = self.tasks.pop(worker)
        if not task.done():
            worker.stop()
        await asyncio.wait_for(task, timeout)

    async def stop_all(self) -> None:
        for worker in list(self.tasks):
            await self.stop(worker)


@pytest.fixture
async def workers(corral: Corral) -> AsyncIterator[Workers]:
    running = Workers(corral)
    try:
        yield running
    finally:
        await running.stop_all()


async def wait_until(
    check: Callable[[], Any | Awaitable[Any]], timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Poll a predicate (plain or async) until it is truthy; returns its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        outcome = check()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return outcome
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Event:
    """One Server-Sent Event: its name and decoded JSON data."""

    def __init__(self, name: str, data: Any) -> None:
        self.name, self.data = name, data

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {self.data!r})"


async def sse_events(response: httpx.Response) -> AsyncIterator[Event]:
    """Parse an SSE response body as it arrives (comments and pings are skipped)."""
    import json

    name, data = "message", []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield Event(name, json.loads("\n".join(data)))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
