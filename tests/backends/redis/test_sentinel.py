"""Redis through Sentinel, on a real group (a primary, a replica, three sentinels).

A failover leaves no worker silent: after the primary is SIGKILLed (or demoted by
``SENTINEL FAILOVER``), calls, blocking waits and the pub/sub hub reach the promoted
replica by themselves; a durable enqueue is acknowledged only once a replica has it, so
none acknowledged is lost. Paused sentinels do not stop a working primary; sentinels
that cannot be reached at connect time give an error naming them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from chaos.harness import RedisProc, wait_until
from chaos.topology import SentinelProcs

from corral import Corral
from corral.backends.base import NewJob
from corral.backends.redis import RedisBackend
from corral.backends.redis.keys import QueueKeys
from corral.backends.redis.mux import MuxRedis
from corral.errors import BackendError, ConnectionFailed
from corral.testing.store import delete_prefix
from corral.worker import Worker
from tests.redis_server import RedisServer


def _new_job(job_id: str) -> NewJob:
    return NewJob(id=job_id, name="t", data=b"[[],{}]")


@pytest.fixture
def own_group(tmp_path: Path) -> Iterator[SentinelProcs]:
    """A Sentinel group of the test's own (it fails over), both nodes with an AOF
    fsynced at every write (what ``durable=True`` on Redis 7.0 asks for)."""
    group = SentinelProcs(tmp_path / "sentinel")
    for node in (group.primary, group.replica):
        node.options.update(appendonly="yes", appendfsync="always")
    group.start()
    try:
        yield group
    finally:
        group.stop()


def _failed_over(group: SentinelProcs, old_port: int) -> bool:
    try:
        return group.current_primary() != old_port
    except RuntimeError:
        return False


@contextlib.asynccontextmanager
async def _doubling(url: str) -> AsyncIterator[tuple[Corral, Any]]:
    """An app on ``url`` with a task ``t.double``, and a worker running it."""
    app = Corral(url, reconnect_timeout=30)

    @app.task(queue="q", name="t.double")
    async def double(n: int) -> int:
        return 2 * n

    worker = Worker(app, ["q"], block=1.0, grace=2.0)
    worker_run = asyncio.create_task(worker.run())
    try:
        yield app, double
    finally:
        worker.stop()
        await asyncio.gather(worker_run, return_exceptions=True)
        await app.close()


def _replica_of(group: SentinelProcs, port: int) -> bool:
    try:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
            replication = client.info("replication")
    except redis.RedisError:
        return False
    return replication["role"] == "slave" and replication["master_link_status"] == "up"


@pytest.mark.slow
async def test_work_resumes_on_the_promoted_replica_and_no_replicated_enqueue_is_lost(
    own_group: SentinelProcs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corral")
    app = Corral(own_group.url, durable=True, reconnect_timeout=30)
    runs: list[int] = []

    @app.task(queue="q", name="t.record")
    async def record(n: int) -> int:
        runs.append(n)
        return n

    # A second producer, not durable: its enqueues are taken while no replica is up.
    plain = Corral(own_group.url, reconnect_timeout=30)

    @plain.task(queue="q", name="t.record")
    async def probe_record(n: int) -> int:
        raise AssertionError("run by the worker of app")

    worker = Worker(app, ["q"], block=1.0, grace=2.0)
    worker_run = asyncio.create_task(worker.run())
    acked: list[int] = []
    refused: list[Exception] = []
    stop = asyncio.Event()

    async def produce() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                await record.enqueue(n)
                acked.append(n)
            except BackendError as exc:  # durable: no replica took it in time
                refused.append(exc)
            await asyncio.sleep(0.005)

    async def more_acked(count: int) -> None:
        target = len(acked) + count
        async with asyncio.timeout(60):
            while len(acked) < target:
                await asyncio.sleep(0.01)

    producer = asyncio.create_task(produce())
    loop = asyncio.get_running_loop()
    try:
        await more_acked(50)
        assert await (await probe_record.enqueue(0)).result(timeout=10) == 0  # hub connected
        old = own_group.primary_proc()
        killed_at = loop.time()
        await asyncio.to_thread(old.kill)
        # Enqueued while the primary is dead: it waits for the failover, and its
        # result arrives through the hub once a worker ran it on the new primary.
        probe = await probe_record.enqueue(-1)
        assert await probe.result(timeout=30) == -1
        resumed_in = loop.time() - killed_at
        assert _failed_over(own_group, old.port)
        # The old primary comes back as a replica: durable enqueues are taken again.
        await asyncio.to_thread(old.start)
        assert await asyncio.to_thread(wait_until, lambda: _replica_of(own_group, old.port), 30)
        await more_acked(50)
        stop.set()
        await producer
        async with asyncio.timeout(30):
            while not set(acked) <= set(runs):
                await asyncio.sleep(0.05)
        after = await record.enqueue(-2)  # events still flow to a result waiter
        assert await after.result(timeout=10) == -2
    finally:
        stop.set()
        await asyncio.gather(producer, return_exceptions=True)
        worker.stop()
        await asyncio.gather(worker_run, return_exceptions=True)
        await app.close()
        await plain.close()
    lost = set(acked) - set(runs)
    assert lost == set()  # every acknowledged (hence replicated) enqueue ran
    assert resumed_in < 20, f"work resumed {resumed_in:.1f} s after the primary died"
    # The only refusals: "no replica" while the old primary was down.
    assert all("had no replica acknowledge" in str(exc) for exc in refused), refused
    print(  # the figures, for -s runs
        f"\nresumed {resumed_in:.2f} s after SIGKILL; acked {len(acked)}, "
        f"refused {len(refused)}, ran {len(runs)} ({len(runs) - len(set(runs))} twice)"
    )


@pytest.mark.slow
async def test_a_demoted_primary_is_left_as_soon_as_sentinel_names_the_new_one(
    own_group: SentinelProcs, caplog: pytest.LogCaptureFixture
) -> None:
    """SENTINEL FAILOVER promotes the replica at once but demotes the live primary
    only seconds later: writes it takes meanwhile are lost when it resyncs. The
    backend leaves it on Sentinel's announcement, so jobs enqueued in that window run,
    and are still there once the old primary is a replica."""
    caplog.set_level(logging.INFO, logger="corral")
    async with _doubling(own_group.url) as (app, double):
        assert await (await double.enqueue(1)).result(timeout=10) == 2
        old_port = own_group.current_primary()
        with redis.Redis(host="127.0.0.1", port=own_group.sentinel_ports[0]) as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", "corral")
        async with asyncio.timeout(30):
            while not any("Sentinel moved the primary" in r.message for r in caplog.records):
                await asyncio.sleep(0.05)
        assert not _replica_of(own_group, old_port)  # not demoted yet: the window is open
        jobs = [await double.enqueue(n) for n in range(20)]
        assert [await job.result(timeout=30) for job in jobs] == [2 * n for n in range(20)]
        assert await asyncio.to_thread(wait_until, lambda: _replica_of(own_group, old_port), 30)
        backend = await app.backend()
        assert isinstance(backend, RedisBackend)
        for job in jobs:  # not lost with the old primary's data
            record = await backend.get("q", job.id)
            assert record is not None and record.state.value == "completed"
        role = await backend.redis.execute_command("ROLE")
        assert role[0] == b"master"  # the backend's own connection moved too
        later = [await double.enqueue(n) for n in range(5)]
        assert [await job.result(timeout=30) for job in later] == [2 * n for n in range(5)]


@pytest.mark.slow
async def test_work_resumes_when_the_sentinels_were_unreachable_as_the_primary_died(
    own_group: SentinelProcs,
) -> None:
    """The sentinels pause (1.5 s, short of Sentinel's 2 s TILT) just as the primary
    dies: calls keep trying (the last primary refuses, no sentinel answers) and move to
    the replica once the sentinels have promoted it."""
    async with _doubling(own_group.url) as (_, double):
        assert await (await double.enqueue(1)).result(timeout=10) == 2
        old = own_group.primary_proc()
        own_group.pause_sentinels()
        try:
            await asyncio.to_thread(old.kill)
            during = asyncio.create_task(double.enqueue(2))
            await asyncio.sleep(1.5)  # the outage under test, not a synchronisation
        finally:
            own_group.resume_sentinels()
        job = await asyncio.wait_for(during, 30)
        assert await job.result(timeout=30) == 4
        assert _failed_over(own_group, old.port)


async def test_a_replica_refusing_a_write_counts_as_a_lost_connection(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """READONLY from a server that a failover made a replica (one Sentinel did not
    announce, or a DNS name that moved): the shared link is dropped, the call raises a
    connection error (retried by the backend), not a refusal."""
    replica = RedisProc(tmp_path, replicaof=f"127.0.0.1 {redis_server.port}").start()
    client = MuxRedis.from_url(replica.url)
    try:
        assert await client.get("k") is None  # reads are served
        link = client._link
        assert link is not None and link.broken is None
        with pytest.raises(redis.ConnectionError, match=r"no longer the primary.*READONLY"):
            await client.set("k", "v")
        assert link.broken is not None
    finally:
        await client.aclose()
        replica.stop()


async def test_paused_sentinels_leave_a_working_primary_usable(
    sentinel_url: str, sentinel_group: SentinelProcs, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisBackend(sentinel_url + "?sentinel_timeout=0.3", reconnect_timeout=10)
    await backend.connect()
    try:
        await backend.enqueue("q", [_new_job("a")])
        sentinel_group.pause_sentinels()
        try:
            # Existing connections: calls, a claim, a blocking wait.
            await backend.enqueue("q", [_new_job("b")])
            jobs, _ = await backend.claim("q", 2, 30_000, "w1")
            assert sorted(job.id for job in jobs) == ["a", "b"]
            stop = asyncio.Event()
            woken = asyncio.create_task(backend.wait_and_claim(["q"], 5, 1, 30_000, "w1", stop))
            await backend.enqueue("q", [_new_job("c")])
            claimed, _ = await asyncio.wait_for(woken, 10)
            assert [job.id for job in claimed] == ["c"]
            # New connections go to the last primary the sentinels named.
            caplog.set_level(logging.WARNING, logger="corral")
            await backend._drop_idle()
            link = backend.redis._link  # type: ignore[attr-defined]
            if link is not None:
                link.close()
            assert (await backend.counts("q"))["active"] == 3
            assert any(
                "no sentinel of service 'corral' answers" in r.message for r in caplog.records
            )
        finally:
            sentinel_group.resume_sentinels()
    finally:
        await backend.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_sentinels_are_named_at_connect() -> None:
    ports = [_closed_port(), _closed_port()]
    url = f"redis+sentinel://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/corral/0"
    backend = RedisBackend(url)
    async with asyncio.timeout(10):  # an error, not a hang
        with pytest.raises(ConnectionFailed) as info:
            await backend.connect()
    message = str(info.value)
    assert "no primary for service 'corral' from the sentinels" in message
    for port in ports:
        assert f"127.0.0.1:{port}: " in message


async def test_a_service_the_sentinels_do_not_monitor_is_named(sentinel_url: str) -> None:
    backend = RedisBackend(sentinel_url.replace("/corral/", "/orders/"))
    with pytest.raises(ConnectionFailed, match="does not monitor 'orders'"):
        await backend.connect()


async def test_a_durable_enqueue_is_acknowledged_once_the_replica_has_it(
    sentinel_url: str, sentinel_group: SentinelProcs
) -> None:
    primary, replica = sentinel_group.primary_proc(), sentinel_group.replica
    if replica is primary:
        replica = sentinel_group.primary
    assert replica.proc is not None
    with primary.client() as admin:
        admin.config_set("appendonly", "yes")
        admin.config_set("appendfsync", "always")
    backend = RedisBackend(sentinel_url, durable=True)
    try:
        await backend.connect()
        assert backend._durable_wait[-1] == ("WAIT", 1, 5000)
        await backend.enqueue("q", [_new_job("a")])
        with replica.client() as client:  # already there when the enqueue returned
            assert client.hget(QueueKeys.build("corral", "q").job("a"), "name") == b"t"
        # A replica that does not answer: the enqueue is stored but not acknowledged.
        backend._durable_wait = tuple((*command[:-1], 300) for command in backend._durable_wait)
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(BackendError, match="had no replica acknowledge the enqueue"):
                await backend.enqueue("q", [_new_job("b")])
        finally:
            replica.proc.send_signal(signal.SIGCONT)
    finally:
        await backend.close()
        with primary.client() as admin:
            admin.config_set("appendonly", "no")
            admin.config_set("appendfsync", "everysec")


async def test_delete_prefix_empties_a_tests_namespace_through_sentinel(
    sentinel_url: str,
) -> None:
    backend = RedisBackend(sentinel_url, prefix="t9")
    await backend.connect()
    try:
        await backend.enqueue("q", [_new_job("a")])
        await backend.redis.set("other:key", "kept")
        assert await asyncio.to_thread(delete_prefix, sentinel_url, "t9") > 1
        assert await backend.stats("q") == await backend.stats("never-used")
        assert await backend.redis.get("other:key") == b"kept"
    finally:
        await backend.close()
