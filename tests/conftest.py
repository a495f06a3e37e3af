from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from chaos.topology import ClusterProcs, SentinelProcs

from tests.redis_server import RedisServer

#: The stores a test that asks for ``store_url`` runs on, each as its own test.
BACKENDS = ("redis", "sqlite")
#: Redis deployments a ``redis`` test can also run on: their URL fixtures.
TOPOLOGIES = {"redis-cluster": "redis_cluster_url", "redis-sentinel": "sentinel_url"}


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's environment from leaking into tests."""
    monkeypatch.delenv("CORRAL_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the whole test session (never a pre-existing Redis)."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcs]:
    """A private Redis Cluster (3 primaries, 3 replicas) for the whole session."""
    cluster = ClusterProcs(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: ClusterProcs) -> str:
    """The ``redis+cluster://`` URL of the session's cluster, every primary emptied."""
    for node in redis_cluster.primary_nodes():
        flush(f"redis://127.0.0.1:{node.port}/0")
    return redis_cluster.url


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session's private Redis, emptied (FLUSHALL) before each test."""
    flush(redis_server.url)
    return redis_server.url


@pytest.fixture(scope="session")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelProcs]:
    """A Sentinel group of the session's own (a primary, a replica, three sentinels),
    started on first use. Tests must leave it as they found it: one that fails the
    primary over starts a group of its own."""
    with SentinelProcs(tmp_path_factory.mktemp("sentinel")) as group:
        yield group


@pytest.fixture
def sentinel_url(sentinel_group: SentinelProcs) -> str:
    """``redis+sentinel://`` URL of the session's Sentinel group, its primary emptied
    (FLUSHALL) before each test."""
    flush(f"redis://127.0.0.1:{sentinel_group.current_primary()}/0")
    return sentinel_group.url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses ``store_url`` (directly or through a fixture) once per
    backend; ``@pytest.mark.backends("redis")`` narrows that to the ones named."""
    if "store_url" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = marker.args if marker else BACKENDS
    unknown = set(names) - set(BACKENDS)
    if not names or unknown:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: backends{names!r}: use {BACKENDS}")
    if "redis" in names:
        # CORRAL_TEST_TOPOLOGIES=redis-cluster,redis-sentinel runs the Redis variants on
        # those deployments too (CI's topology run; too slow for the inner loop).
        extra = os.environ.get("CORRAL_TEST_TOPOLOGIES", "")
        names = (*names, *(t for t in extra.split(",") if t in TOPOLOGIES))
    # ``@pytest.mark.inner_loop_backends("sqlite")``: the other backends' variants are
    # marked slow (CI runs them; the inner loop does not).
    inner = metafunc.definition.get_closest_marker("inner_loop_backends")
    params = [
        pytest.param(n, marks=pytest.mark.slow) if inner and n not in inner.args else n
        for n in names
    ]
    metafunc.parametrize("store_url", params, indirect=True)


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store of the backend the test is parametrised with: the private Redis
    (FLUSHALLed) or a fresh SQLite file."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    if request.param in TOPOLOGIES:
        return str(request.getfixturevalue(TOPOLOGIES[request.param]))
    return f"sqlite:///{tmp_path / 'corral.db'}"
