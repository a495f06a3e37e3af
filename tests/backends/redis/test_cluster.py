"""Redis Cluster specifics on a real cluster: URLs, the fast path, waits across nodes,
scripts missing on a primary, and the pub/sub hub outliving its node."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from chaos.topology import ClusterProcs

from corral import Corral
from corral.backends.redis import RedisBackend
from corral.backends.redis.cluster import MuxCluster, parse_cluster_url
from corral.errors import BackendError, ConfigurationError, ConnectionFailed
from corral.testing.store import delete_prefix
from corral.worker import Worker
from tests.contract.conftest import new_job


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("redis+cluster://h1/", "not host:port"),
        ("redis+cluster://h1:99999/", "not host:port"),
        ("redis+cluster://h1:1,:2/", "not host:port"),
        ("redis+cluster://h1:1/3", "only database 0"),
        ("redis+cluster://h1:1/?ssl_ca_certs=x", r"need rediss\+cluster"),
        ("redis+cluster://h1:1/?bogus=1", "unknown cluster URL option 'bogus'"),
    ],
)
def test_a_bad_cluster_url_names_its_fault(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_cluster_url(url)


def test_a_cluster_url_gives_seeds_credentials_and_tls() -> None:
    seeds, options = parse_cluster_url(
        "rediss+cluster://app:s%40cret@10.0.0.1:7000,[::1]:7001/0?ssl_cert_reqs=none"
    )
    assert seeds == [("10.0.0.1", 7000), ("::1", 7001)]
    assert options == {
        "username": "app",
        "password": "s@cret",
        "ssl": True,
        "ssl_cert_reqs": "none",
    }


async def test_connect_reports_a_bad_cluster_url_as_configuration_error() -> None:
    backend = RedisBackend("redis+cluster://127.0.0.1:1/5")
    with pytest.raises(ConfigurationError, match="only database 0"):
        await backend.connect()


async def test_an_unreachable_cluster_is_reported_naming_its_url() -> None:
    backend = RedisBackend("redis+cluster://127.0.0.1:1,127.0.0.1:2/")
    with pytest.raises(ConnectionFailed, match=r"redis\+cluster://127\.0\.0\.1:1,127\.0\.0\.1:2/"):
        await backend.connect()


def _queues_on_different_nodes(cluster: ClusterProcs) -> tuple[str, str]:
    owners: dict[int, str] = {}
    for i in range(100):
        queue = f"q{i}"
        owners.setdefault(cluster.owner(f"corral:{{{queue}}}:meta").port, queue)
        if len(owners) == 2:
            break
    first, second = owners.values()
    return first, second


async def test_keyed_commands_take_the_pipelined_node_connection(redis_cluster_url: str) -> None:
    backend = RedisBackend(redis_cluster_url)
    await backend.connect()
    try:
        cluster = backend.redis
        assert isinstance(cluster, MuxCluster)
        await backend.enqueue("q", [new_job("a")])
        node = cluster.node_client("corral:{q}:meta")
        # The script ran over the node's shared link, not a pooled connection.
        assert node._link is not None and node._link.broken is None  # type: ignore[attr-defined]
    finally:
        await backend.close()


async def test_one_worker_serves_queues_that_live_on_different_nodes(
    redis_cluster: ClusterProcs, redis_cluster_url: str
) -> None:
    first, second = _queues_on_different_nodes(redis_cluster)
    app = Corral(redis_cluster_url)
    done: list[str] = []

    @app.task(name="t.mark")
    def mark(value: str) -> None:
        done.append(value)

    worker = Worker(app, [first, second], concurrency=2, block=5.0, grace=2.0)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.5)  # idle in its blocking waits, one per node
        await mark.options(queue=second).enqueue("b")
        async with asyncio.timeout(3):  # woken, not the 5 s wait running out
            while not done:
                await asyncio.sleep(0.01)
        await mark.options(queue=first).enqueue("a")
        async with asyncio.timeout(3):
            while len(done) < 2:
                await asyncio.sleep(0.01)
    finally:
        worker.stop()
        await running
        await app.close()
    assert sorted(done) == ["a", "b"]


async def test_a_primary_without_the_scripts_gets_them_again(
    redis_cluster: ClusterProcs, redis_cluster_url: str
) -> None:
    backend = RedisBackend(redis_cluster_url)
    await backend.connect()
    try:
        await backend.enqueue("q", [new_job("a")])
        owner = redis_cluster.owner("corral:{q}:meta")
        with owner.client() as client:  # as on a primary added after the start
            client.execute_command("FUNCTION", "FLUSH")
            client.execute_command("SCRIPT", "FLUSH")
        assert await backend.enqueue("q", [new_job("b")]) == [None]
        with owner.client() as client:
            assert client.execute_command("FUNCTION", "LIST")
    finally:
        await backend.close()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[ClusterProcs]:
    """A cluster of the test's own, whose nodes it may kill."""
    cluster = ClusterProcs(tmp_path / "cluster").start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def own_backend(own_cluster: ClusterProcs) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(own_cluster.url, reconnect_timeout=20)
    await backend.connect()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.mark.slow
async def test_events_flow_again_after_the_hubs_node_dies(
    own_cluster: ClusterProcs, own_backend: RedisBackend
) -> None:
    events = await own_backend.events("q")
    seen: list[tuple[str, str]] = []

    async def read() -> None:
        async for event in events:
            seen.append(event)

    reader = asyncio.create_task(read())
    try:
        await own_backend.enqueue("q", [new_job("before")])
        async with asyncio.timeout(5):
            while ("added", "before") not in seen:
                await asyncio.sleep(0.01)
        back = asyncio.Event()
        assert own_backend._hub is not None
        own_backend._hub.on_gap(back.set)  # listening again; messages meanwhile are lost
        hub_node = own_cluster.owner("corral:{q}:meta")  # the queue's shard channel is here
        own_cluster.kill(hub_node)
        async with asyncio.timeout(15):
            await back.wait()
        assert own_cluster.failed_over(hub_node, "corral:{q}:meta")
        await own_backend.enqueue("q", [new_job("after")])
        async with asyncio.timeout(10):
            while ("added", "after") not in seen:
                await asyncio.sleep(0.05)
    finally:
        reader.cancel()
        await events.aclose()


@pytest.mark.slow
async def test_calls_go_to_the_promoted_replica_after_a_primary_dies(
    own_cluster: ClusterProcs, own_backend: RedisBackend
) -> None:
    await own_backend.enqueue("q", [new_job("a")])
    owner = own_cluster.owner("corral:{q}:meta")
    own_cluster.kill(owner)
    # The call rides out the failover (about two node timeouts) instead of failing.
    assert await own_backend.enqueue("q", [new_job("b")]) == [None]
    assert own_cluster.owner("corral:{q}:meta") is not owner
    with pytest.raises(redis.ConnectionError):
        owner.client().ping()


async def test_delete_prefix_empties_a_tests_namespace_on_every_node(
    redis_cluster: ClusterProcs, redis_cluster_url: str
) -> None:
    backend = RedisBackend(redis_cluster_url, prefix="t9")
    await backend.connect()
    try:
        first, second = _queues_on_different_nodes(redis_cluster)
        await backend.enqueue(first, [new_job("a")])
        await backend.enqueue(second, [new_job("b")])
        await backend.redis.set("other:key", "kept")
        deleted = await asyncio.to_thread(delete_prefix, redis_cluster_url, "t9")
        assert deleted > 2  # job hashes, queue sets and meta on both nodes
        assert await backend.stats(first) == await backend.stats("never-used")
        assert await backend.redis.get("other:key") == b"kept"
    finally:
        await backend.close()


@pytest.mark.slow
async def test_a_durable_enqueue_waits_for_the_queues_replica(own_cluster: ClusterProcs) -> None:
    for node in own_cluster.nodes:
        with node.client() as client:
            client.config_set("appendonly", "yes")
            client.config_set("appendfsync", "always")
    backend = RedisBackend(own_cluster.url, durable=True)
    await backend.connect()
    try:
        assert await backend.enqueue("q", [new_job("a")]) == [None]
        owner = own_cluster.owner("corral:{q}:meta")
        with owner.client() as client:
            assert client.info("commandstats")["cmdstat_wait"]["calls"] >= 1
            replica_port = client.info("replication")["slave0"]["port"]
        replica = next(n for n in own_cluster.nodes if n.port == int(replica_port))
        own_cluster.kill(replica)
        # Stored on the primary only: the caller hears that a failover could lose it.
        with pytest.raises(BackendError, match="no replica acknowledge"):
            await backend.enqueue("q", [new_job("b")])
    finally:
        await backend.close()


@pytest.mark.slow
async def test_a_password_protected_cluster(tmp_path: Path) -> None:
    cluster = ClusterProcs(tmp_path / "cluster", primaries=3, replicas=0).start()
    try:
        for node in cluster.nodes:  # protected once formed (the harness talks plainly)
            with node.client() as client:
                client.config_set("masterauth", "s3cret")
                client.config_set("requirepass", "s3cret")
        url = cluster.url.replace("redis+cluster://", "redis+cluster://:s3cret@")
        backend = RedisBackend(url)
        await backend.connect()
        try:
            assert await backend.enqueue("q", [new_job("a")]) == [None]
            jobs, _ = await backend.claim("q", 1, 30_000, "w1")
            assert [job.id for job in jobs] == ["a"]
        finally:
            await backend.close()
        wrong = RedisBackend(url.replace("s3cret", "wrong"))
        with pytest.raises(ConnectionFailed, match=r":\*\*\*@.*password") as refused:
            await wrong.connect()
        assert "wrong" not in str(refused.value)  # the password is masked
    finally:
        cluster.stop()
