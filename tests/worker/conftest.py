from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest

from corral import Corral
from corral.worker import Worker


@pytest.fixture
async def app(store_url: str) -> AsyncIterator[Corral]:
    """The app the worker runs (tasks are registered on it by each test), on each
    backend in turn (see ``store_url`` in tests/conftest.py)."""
    app = Corral(store_url)
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
async def producer(store_url: str) -> AsyncIterator[Corral]:
    """A second app on the same store with no tasks registered (a bare producer)."""
    app = Corral(store_url)
    try:
        yield app
    finally:
        await app.close()


class Workers:
    """In-process workers: ``start`` runs ``Worker.run()`` as an asyncio task;
    ``stop`` stops one and waits for ``run()`` to return (re-raising its error)."""

    def __init__(self, app: Corral) -> None:
        self.app = app
        self.tasks: dict[Worker, asyncio.Task[None]] = {}

    def start(
        self, queues: Sequence[str] = ("default",), *, app: Corral | None = None, **options: Any
    ) -> Worker:
        options.setdefault("grace", 2.0)
        # A short blocking wait bounds how long a stop can take: cancelling an in-flight
        # BZPOPMIN is not always honoured on Python 3.11 (see test_lifecycle.py's
        # test_stop_right_as_the_worker_starts_waiting_is_prompt).
        options.setdefault("block", 1.0)
        worker = Worker(app or self.app, list(queues), **options)
        self.tasks[worker] = asyncio.create_task(worker.run(), name="test-worker")
        return worker

    async def stop(self, worker: Worker, timeout: float = 10.0) -> None:
        task = self.tasks[worker]
        if not task.done():
            worker.stop()
        await asyncio.wait_for(task, timeout)

    async def join(self, worker: Worker, timeout: float = 10.0) -> None:
        """Wait for a worker that was told to stop elsewhere to finish."""
        await asyncio.wait_for(self.tasks[worker], timeout)

    async def stop_all(self) -> None:
        for worker in self.tasks:
            if not self.tasks[worker].done():
                worker.stop()
        for worker in list(self.tasks):
            await self.stop(worker)


@pytest.fixture
async def workers(app: Corral) -> AsyncIterator[Workers]:
    """Every worker started here is stopped and awaited at teardown (before the app
    closes), so a crash inside ``run()`` fails the test."""
    running = Workers(app)
    try:
        yield running
    finally:
        await running.stop_all()


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0, interval: float = 0.01
) -> None:
    """Poll a predicate (plain or async) until it holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        outcome = check()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
