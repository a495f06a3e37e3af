"""``rediss+cluster://`` and ``rediss+sentinel://`` against servers that speak only TLS
(clients, cluster bus, replication, sentinels), with certificates from trustme."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import trustme
from chaos.topology import ClusterProcs, SentinelProcs

from corral import Corral
from corral.backends.redis import RedisBackend
from corral.errors import ConnectionFailed
from corral.worker import Worker

pytestmark = pytest.mark.slow


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """``ca.pem``, ``node.pem``, ``node.key`` for 127.0.0.1."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
    (tmp_path / "node.pem").write_bytes(cert.cert_chain_pems[0].bytes())
    (tmp_path / "node.key").write_bytes(cert.private_key_pem.bytes())
    return tmp_path


async def _round_trip(url: str) -> None:
    """A job enqueued, claimed through the pipelined link, its result heard by pub/sub."""
    app = Corral(url)

    @app.task(name="t.tls")
    def echo(value: str) -> str:
        return value

    worker = Worker(app, ["q"], concurrency=1, block=5.0, grace=2.0)
    running = asyncio.create_task(worker.run())
    try:
        job = await echo.options(queue="q").enqueue("over tls")
        assert await job.result(timeout=10) == "over tls"
    finally:
        worker.stop()
        await running
        await app.close()


async def test_a_tls_cluster(certs: Path) -> None:
    cluster = ClusterProcs(certs / "cluster", primaries=3, replicas=0, tls=certs).start()
    try:
        assert cluster.url.startswith("rediss+cluster://")
        await _round_trip(cluster.url)
        plain = RedisBackend(cluster.url.replace("rediss+", "redis+").split("?")[0])
        with pytest.raises(ConnectionFailed):  # the nodes speak nothing but TLS
            await plain.connect()
    finally:
        cluster.stop()


async def test_a_tls_sentinel_group(certs: Path) -> None:
    with SentinelProcs(certs / "sentinel", tls=certs) as group:
        assert group.url.startswith("rediss+sentinel://")
        await _round_trip(group.url)
        plain = RedisBackend(group.url.replace("rediss+", "redis+").split("?")[0])
        with pytest.raises(ConnectionFailed):
            await plain.connect()
