"""A wait honours its timeout whatever the store's connection does, and later waits
work once the store answers again (every backend).

The stall is real: redis-server is stopped (SIGSTOP: every command, the SUBSCRIBE of
the wait included, gets no reply until SIGCONT); SQLite's write lock is held by another
connection while a write of this backend waits for it, so this backend's reads queue
behind that write. The stall would last STALL (longer than LIMIT), so a wait that does
not enforce its own bound fails the test; it ends as soon as the wait under test has
returned, so a passing test does not sit out the rest of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis
from chaos.topology import ClusterProcs, SentinelProcs

from corral import Corral
from corral.backends.base import Backend, Completion, JobState, Retention
from corral.errors import ResultTimeout
from tests.contract.conftest import claim_one, enqueue, new_job
from tests.redis_server import RedisServer

Q = "q"
TIMEOUT = 1.0
LIMIT = 3.0  # the promise is TIMEOUT; this allows scheduling slack on a busy machine
STALL = 4.5  # longer than LIMIT


@contextlib.asynccontextmanager
async def stalled(backend: Backend, request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """The backend's store does not answer from entering until the body has run (or
    STALL seconds at most)."""
    url: str = backend.url  # type: ignore[attr-defined]
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        # A write of this backend now waits for the lock; reads queue behind it.
        blocked = asyncio.ensure_future(backend.enqueue(Q, [new_job("blocked")]))
        await asyncio.sleep(0.05)
        release = asyncio.get_running_loop().call_later(STALL, holder.rollback)
        try:
            yield
            release.cancel()
            if holder.in_transaction:
                holder.rollback()
            await blocked
        finally:
            release.cancel()
            if holder.in_transaction:
                holder.rollback()
            holder.close()
        return
    if url.startswith("redis+cluster"):
        # Every primary stops answering clients (not the cluster bus: no failover).
        # UNPAUSE would wait behind the pause itself, so this stall lasts STALL.
        cluster: ClusterProcs = request.getfixturevalue("redis_cluster")
        paused_at = time.monotonic()
        for node in cluster.primary_nodes():
            with node.client() as client:
                client.execute_command("CLIENT", "PAUSE", int(STALL * 1000), "ALL")
        try:
            yield
        finally:
            # Sit out the pause: the waits after it start on a cluster that answers
            # again, whose hub may have replaced a connection that went silent.
            await asyncio.sleep(max(0.0, paused_at + STALL + 0.2 - time.monotonic()))
        return
    group: SentinelProcs | None = None
    if url.startswith("redis+sentinel"):
        # The session's Sentinel group: its sentinels are paused too, or they would
        # fail the stopped primary over.
        group = request.getfixturevalue("sentinel_group")
        primary = group.primary_proc()
        assert primary.proc is not None
        pid, url = primary.proc.pid, primary.url
        group.pause_sentinels()
    else:
        # The backend's store is the session's private redis-server (``redis_url``).
        server: RedisServer = request.getfixturevalue("redis_server")
        assert url == server.url
        pid = server.pid
    resume = asyncio.get_running_loop().call_later(STALL, os.kill, pid, signal.SIGCONT)
    os.kill(pid, signal.SIGSTOP)
    admin = aredis.Redis.from_url(url)
    try:
        yield
        os.kill(pid, signal.SIGCONT)
        await admin.ping()  # answered once the server runs again
    finally:
        resume.cancel()
        os.kill(pid, signal.SIGCONT)
        if group is not None:
            group.resume_sentinels()
        await admin.aclose()


async def test_a_wait_returns_within_its_timeout_while_the_store_stalls(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    await enqueue(backend, Q, "j1")
    async with stalled(backend, request):
        started = time.monotonic()
        try:
            outcome = await asyncio.wait_for(backend.wait_finished(Q, "j1", TIMEOUT), 30)
        except TimeoutError as exc:
            raise AssertionError("the wait did not end within 30 s") from exc
        elapsed = time.monotonic() - started
        assert outcome is None
        assert elapsed < LIMIT, f"wait_finished(timeout={TIMEOUT}) took {elapsed:.1f} s"

    # The store answers again: a new wait is woken by the completion.
    waiting = asyncio.ensure_future(backend.wait_finished(Q, "j1", 10))
    job = await claim_one(backend, Q)
    assert await backend.complete(Q, [Completion(job.id, job.token, b"1")], Retention()) == [True]
    assert await asyncio.wait_for(waiting, 10) is JobState.COMPLETED


async def test_job_result_raises_result_timeout_in_time_while_the_store_stalls(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    app = Corral(backend.url)  # type: ignore[attr-defined]
    try:
        job = await app.enqueue("t.x")
        async with stalled(await app.backend(), request):
            started = time.monotonic()
            with pytest.raises(ResultTimeout):
                await asyncio.wait_for(job.result(timeout=TIMEOUT), 30)
            elapsed = time.monotonic() - started
            assert elapsed < LIMIT, f"job.result(timeout={TIMEOUT}) took {elapsed:.1f} s"
    finally:
        await app.close()
