"""The worker's background loops survive unexpected errors.

A real backend is wrapped so that one of its calls raises an error that is not a
BackendError once; the loop that made the call must log it and carry on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from corral import Corral, JobState
from tests.worker.conftest import Workers, wait_until


class FaultOnce:
    """Wraps a backend method: the first call after ``arm()`` raises RuntimeError."""

    def __init__(self, method: Callable[..., Awaitable[Any]]) -> None:
        self.method = method
        self.calls = 0
        self.armed = False
        self.raised = False

    def arm(self) -> None:
        self.armed = True

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.armed and not self.raised:
            self.raised = True
            raise RuntimeError("injected fault")
        return await self.method(*args, **kwargs)


async def inject(app: Corral, monkeypatch: pytest.MonkeyPatch, name: str) -> FaultOnce:
    backend = await app.backend()
    fault = FaultOnce(getattr(backend, name))
    monkeypatch.setattr(backend, name, fault)
    return fault


async def test_renewals_go_on_after_an_unexpected_error(
    app: Corral, workers: Workers, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    renew = await inject(app, monkeypatch, "renew")
    runs = 0
    release = asyncio.Event()

    @app.task(name="sup.long")
    async def long() -> str:
        nonlocal runs
        runs += 1
        await release.wait()
        return "done"

    # Renewed every 0.1 s; reaped after 0.4 s without renewal.
    workers.start(lease=0.4)
    job = await long.enqueue()
    await wait_until(lambda: runs == 1)
    renew.arm()
    await wait_until(lambda: renew.raised)
    after = renew.calls
    # Long enough for the lease to expire several times over had renewals stopped.
    await wait_until(lambda: renew.calls >= after + 10)
    release.set()
    assert await job.result(timeout=5) == "done"
    await job.refresh()
    assert runs == 1
    assert job.stalls == 0
    assert any(
        r.levelno == logging.ERROR and r.exc_info and "injected fault" in str(r.exc_info[1])
        for r in caplog.records
    ), "the unexpected error was not logged with its traceback"


async def test_completions_are_recorded_after_an_unexpected_error(
    app: Corral, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    complete = await inject(app, monkeypatch, "complete")
    complete.arm()
    runs = 0

    @app.task(name="sup.quick")
    async def quick(n: int) -> int:
        nonlocal runs
        runs += 1
        return n

    workers.start(lease=0.4)
    first = await quick.enqueue(1)
    assert await first.result(timeout=5) == 1
    assert complete.raised
    second = await quick.enqueue(2)
    assert await second.result(timeout=5) == 2
    await first.refresh()
    assert first.state is JobState.COMPLETED
    assert first.stalls == 0
    assert runs == 2


async def test_heartbeat_and_reaper_go_on_after_an_unexpected_error(
    app: Corral, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    register = await inject(app, monkeypatch, "register_worker")
    reap = await inject(app, monkeypatch, "reap_stalled")
    register.arm()
    reap.arm()
    worker = workers.start(lease=0.4, heartbeat=0.1)
    await wait_until(lambda: register.raised and reap.raised)
    registered, reaped = register.calls, reap.calls
    await wait_until(lambda: register.calls > registered + 2 and reap.calls > reaped + 2)
    assert [w.id for w in await app.workers()] == [worker.id]
