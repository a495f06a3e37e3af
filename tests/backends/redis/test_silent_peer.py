"""A Redis that stops answering without closing its connections (paused, partitioned)
is noticed: the pub/sub hub PINGs a silent connection and replaces it when no reply
comes, and a blocking wait's link is closed a margin after the wait's own timeout,
instead of both waiting on a socket for ever or for the socket timeout."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos.harness import RedisProc

from corral.backends.redis import RedisBackend, pubsub
from corral.backends.redis import backend as backend_module
from tests.contract.conftest import new_job


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisProc]:
    proc = RedisProc(tmp_path).start()
    try:
        yield proc
    finally:
        if proc.proc is not None:
            proc.proc.send_signal(signal.SIGCONT)
        proc.stop()


async def test_the_hub_replaces_a_connection_that_went_silent(
    server: RedisProc, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pubsub, "PING_AFTER", 0.2)
    monkeypatch.setattr(pubsub, "PONG_TIMEOUT", 0.3)
    caplog.set_level(logging.INFO, logger="corral")
    backend = RedisBackend(server.url, reconnect_timeout=30)
    await backend.connect()
    events = await backend.events("q")
    seen: list[tuple[str, str]] = []

    async def read() -> None:
        async for event in events:
            seen.append(event)

    reader = asyncio.create_task(read())
    assert server.proc is not None
    try:
        server.proc.send_signal(signal.SIGSTOP)
        async with asyncio.timeout(10):  # PING unanswered: the hub calls it lost
            while not any("lost the connection" in r.message for r in caplog.records):
                await asyncio.sleep(0.05)
        server.proc.send_signal(signal.SIGCONT)
        # Subscribed again on a new connection: events flow (those published before
        # that are the gap its listeners hear of).
        async with asyncio.timeout(15):
            for n in range(10_000):
                await backend.enqueue("q", [new_job(f"after-{n}")])
                await asyncio.sleep(0.1)
                if any(job_id.startswith("after-") for _, job_id in seen):
                    break
    finally:
        server.proc.send_signal(signal.SIGCONT)
        reader.cancel()
        await events.aclose()
        await backend.close()


async def test_a_blocking_wait_on_a_silent_server_ends_a_margin_after_its_timeout(
    server: RedisProc, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(backend_module, "WAIT_MARGIN", 0.5)
    caplog.set_level(logging.INFO, logger="corral")
    backend = RedisBackend(server.url, reconnect_timeout=30)
    await backend.connect()
    assert server.proc is not None
    try:
        await backend.wait_and_claim(["q"], 0.1, 1, 30_000, "w1", asyncio.Event())  # a link
        server.proc.send_signal(signal.SIGSTOP)
        waiting = asyncio.create_task(
            backend.wait_and_claim(["q"], 0.5, 1, 30_000, "w1", asyncio.Event())
        )
        # Without the margin the link's socket timeout (40 s) would decide.
        async with asyncio.timeout(5):
            while not any("0.5 s blocking wait" in r.message for r in caplog.records):
                await asyncio.sleep(0.05)
        assert not waiting.done()  # retried: the worker carries on once Redis answers
        server.proc.send_signal(signal.SIGCONT)
        await backend.enqueue("q", [new_job("j")])
        async with asyncio.timeout(15):
            jobs, _ = await waiting
        assert [job.id for job in jobs] in ([], ["j"])
    finally:
        server.proc.send_signal(signal.SIGCONT)
        await backend.close()
