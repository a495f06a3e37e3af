"""Kept-alive webhook connections (corral.notify.clients) against a real receiver on
loopback that counts its TCP connections: reused per host name, never across names
that share an address, the guard still checking every delivery."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from corral import Corral
from corral.notify import Webhook, verify
from corral.notify.base import DeliveryError, NotifySettings
from corral.notify.clients import WebhookClients
from corral.worker import Worker
from tests.notify.conftest import LOOPBACK, FakeDNS, make_notice
from tests.notify.receiver import Receiver
from tests.worker.conftest import wait_until

ALLOW_LOOPBACK = NotifySettings(allow=("127.0.0.1",), timeout=5.0)


@pytest.fixture
def kept(secret: str) -> Iterator[Receiver]:
    server = Receiver([secret], keep_alive=True)
    yield server
    server.close()


async def test_deliveries_to_one_endpoint_share_one_connection(kept: Receiver, secret: str) -> None:
    hook = Webhook(kept.url("/ok"), secret=secret)
    notices = [make_notice() for _ in range(20)]
    async with WebhookClients() as clients:
        with clients.installed():
            for notice in notices:
                await hook.deliver(notice, LOOPBACK)
            await hook.send({"n": 1}, id="own-1", settings=LOOPBACK)
        assert len(clients) == 1

    assert len(kept.connections) == 1
    assert [r.connection for r in kept.requests] == [1] * 21
    assert [r.headers["webhook-id"] for r in kept.requests] == [n.id for n in notices] + ["own-1"]
    for got in kept.requests:
        assert got.verified_with == [secret]
        verify(got.body, got.headers, secret)


async def test_concurrent_deliveries_keep_their_connections(kept: Receiver, secret: str) -> None:
    # 20 at once, as a busy worker delivers: about 20 connections for 100 deliveries
    # (a few more: they are spread over clients, whose idle connections are their own).
    hook = Webhook(kept.url("/ok"), secret=secret)

    async def deliver_five() -> None:
        for _ in range(5):
            await hook.deliver(make_notice(), LOOPBACK)

    async with WebhookClients() as clients, clients.installed():
        await asyncio.gather(*(deliver_five() for _ in range(20)))
    assert len(kept.requests) == 100 and len(kept.connections) <= 30


async def test_without_installed_clients_each_delivery_has_its_own(
    kept: Receiver, secret: str
) -> None:
    hook = Webhook(kept.url("/ok"), secret=secret)
    for _ in range(3):
        await hook.deliver(make_notice(), LOOPBACK)
    assert [r.connection for r in kept.requests] == [1, 2, 3]


async def test_a_name_sharing_an_address_gets_its_own_connection(
    kept: Receiver, secret: str, dns: FakeDNS
) -> None:
    # Both names resolve to the receiver's address: pooled by address alone, b.test's
    # delivery would ride the connection opened for a.test.
    dns.answers["a.test"] = [["127.0.0.1"]]
    dns.answers["b.test"] = [["127.0.0.1"]]
    a = Webhook(kept.url("/a", host="a.test"), secret=secret)
    b = Webhook(kept.url("/b", host="b.test"), secret=secret)
    async with WebhookClients() as clients, clients.installed():
        for hook in (a, b, a, b, a, b):
            await hook.deliver(make_notice(), ALLOW_LOOPBACK)

    hosts_by_connection: dict[int, set[str]] = {}
    for got in kept.requests:
        hosts_by_connection.setdefault(got.connection, set()).add(got.headers["host"])
    assert sorted(hosts_by_connection.values(), key=sorted) == [
        {f"a.test:{kept.port}"},
        {f"b.test:{kept.port}"},
    ]
    assert len(kept.requests) == 6


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return authority


async def test_a_tls_connection_verified_for_one_name_never_serves_another(
    ca: trustme.CA, secret: str, dns: FakeDNS
) -> None:
    # The certificate names a.test only. b.test resolves to the same address: reusing
    # a.test's connection would deliver b.test's webhook to a server never verified
    # for b.test. It must open its own connection, and fail the certificate check.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("a.test").configure_cert(context)
    server = Receiver([secret], tls=context, keep_alive=True)
    dns.answers["a.test"] = [["127.0.0.1"]]
    dns.answers["b.test"] = [["127.0.0.1"]]
    try:
        a = Webhook(server.url("/a", host="a.test"), secret=secret)
        b = Webhook(server.url("/b", host="b.test"), secret=secret)
        async with WebhookClients() as clients, clients.installed():
            await a.deliver(make_notice(), ALLOW_LOOPBACK)
            with pytest.raises(DeliveryError) as caught:
                await b.deliver(make_notice(), ALLOW_LOOPBACK)
            await a.deliver(make_notice(), ALLOW_LOOPBACK)
        assert "certificate" in str(caught.value).lower() and caught.value.retry
        assert [r.path for r in server.requests] == ["/a", "/a"]
        assert [r.connection for r in server.requests] == [1, 1]
        assert server.server_names == ["a.test", "b.test"]
    finally:
        server.close()


async def test_the_guard_checks_every_delivery_even_with_a_kept_connection(
    kept: Receiver, secret: str, dns: FakeDNS
) -> None:
    # Allowed by address: once the name moves to a private address it is refused,
    # although a connection to its old address is still open.
    dns.answers["moving.test"] = [["127.0.0.1"], ["127.0.0.1"], ["10.0.0.1"]]
    hook = Webhook(kept.url("/ok", host="moving.test"), secret=secret)
    async with WebhookClients() as clients, clients.installed():
        await hook.deliver(make_notice(), ALLOW_LOOPBACK)
        await hook.deliver(make_notice(), ALLOW_LOOPBACK)
        with pytest.raises(DeliveryError) as caught:
            await hook.deliver(make_notice(), ALLOW_LOOPBACK)
    assert not caught.value.retry
    assert "'moving.test' resolves to 10.0.0.1, which is in 10.0.0.0/8" in str(caught.value)
    assert dns.lookups == ["moving.test"] * 3
    assert [r.connection for r in kept.requests] == [1, 1]


async def test_a_connection_the_receiver_closed_unread_is_retried_once(
    secret: str,
) -> None:
    # Every request after the first on a connection is dropped unread (a receiver whose
    # idle timeout runs out just as it arrives): sent again on a new connection, with
    # the same webhook-id and signature.
    server = Receiver([secret], keep_alive=True, drop_after=1)
    try:
        hook = Webhook(server.url("/ok"), secret=secret)
        notices = [make_notice() for _ in range(3)]
        async with WebhookClients() as clients, clients.installed():
            for notice in notices:
                await hook.deliver(notice, LOOPBACK)
        assert [r.headers["webhook-id"] for r in server.requests] == [n.id for n in notices]
        assert [r.connection for r in server.requests] == [1, 2, 3]
        assert all(r.verified_with == [secret] for r in server.requests)
    finally:
        server.close()


async def test_a_fresh_connection_closed_unread_is_not_sent_again(secret: str) -> None:
    # Dropped on a new connection (no kept one to blame): one try, then the delivery
    # schedule's retry.
    server = Receiver([secret], keep_alive=True, drop_after=0)
    try:
        hook = Webhook(server.url("/ok"), secret=secret)
        async with WebhookClients() as clients, clients.installed():
            with pytest.raises(DeliveryError) as caught:
                await hook.deliver(make_notice(), LOOPBACK)
        assert caught.value.retry and "disconnected" in str(caught.value).lower()
        assert len(server.connections) == 1 and server.requests == []
    finally:
        server.close()


async def test_a_receiver_closing_idle_connections_is_reconnected(secret: str) -> None:
    server = Receiver([secret], keep_alive=True, idle_close=1.0)
    try:
        hook = Webhook(server.url("/ok"), secret=secret)
        async with WebhookClients() as clients, clients.installed():
            await hook.deliver(make_notice(), LOOPBACK)
            await hook.deliver(make_notice(), LOOPBACK)
            await asyncio.sleep(1.5)  # the receiver closes the idle connection meanwhile
            await hook.deliver(make_notice(), LOOPBACK)
        assert [r.connection for r in server.requests] == [1, 1, 2]
    finally:
        server.close()


async def test_a_timeout_still_bounds_an_attempt_on_a_kept_connection(
    kept: Receiver, secret: str
) -> None:
    fast = Webhook(kept.url("/ok"), secret=secret)
    slow = Webhook(kept.url("/slow"), secret=secret, timeout=0.3)
    async with WebhookClients() as clients, clients.installed():
        await fast.deliver(make_notice(), LOOPBACK)
        started = time.monotonic()
        with pytest.raises(DeliveryError, match=r"no answer within 0\.3 s") as caught:
            await slow.deliver(make_notice(), LOOPBACK)
        assert time.monotonic() - started < 3 and caught.value.retry
        kept.release.set()
        await fast.deliver(make_notice(), LOOPBACK)
    # The timed-out request's connection was dropped, not reused for the next one.
    assert [r.connection for r in kept.requests] == [1, 1, 2]


async def test_no_cookie_follows_a_delivery(kept: Receiver, secret: str) -> None:
    hook = Webhook(kept.url("/cookie"), secret=secret)
    other = Webhook(kept.url("/ok"), secret=Webhook.new_secret())
    async with WebhookClients() as clients, clients.installed():
        await hook.deliver(make_notice(), LOOPBACK)
        await other.deliver(make_notice(), LOOPBACK)
    assert [r.connection for r in kept.requests] == [1, 1]
    assert "cookie" not in kept.requests[1].headers


async def test_bounded_by_hosts_and_idle_time(kept: Receiver, secret: str, dns: FakeDNS) -> None:
    for name in ("h1.test", "h2.test", "h3.test"):
        dns.answers[name] = [["127.0.0.1"]]
    hooks = [Webhook(kept.url("/ok", host=n), secret=secret) for n in ("h1.test", "h2.test")]
    async with WebhookClients(max_hosts=2, idle=2.0) as clients, clients.installed():
        for hook in hooks:
            await hook.deliver(make_notice(), ALLOW_LOOPBACK)
        assert len(clients) == 2
        third = Webhook(kept.url("/ok", host="h3.test"), secret=secret)
        await third.deliver(make_notice(), ALLOW_LOOPBACK)  # h1's client is closed
        assert len(clients) == 2
        await hooks[0].deliver(make_notice(), ALLOW_LOOPBACK)  # a new connection
        await asyncio.sleep(2.2)
        await third.deliver(make_notice(), ALLOW_LOOPBACK)  # the idle ones are closed
        assert len(clients) == 1
    assert len(clients) == 0 and clients.closed
    assert [r.connection for r in kept.requests] == [1, 2, 3, 4, 5]


async def test_closed_clients_still_deliver_on_a_client_of_their_own(
    kept: Receiver, secret: str
) -> None:
    hook = Webhook(kept.url("/ok"), secret=secret)
    clients = WebhookClients()
    with clients.installed():
        await hook.deliver(make_notice(), LOOPBACK)
        await clients.aclose()
        await hook.deliver(make_notice(), LOOPBACK)
        await hook.deliver(make_notice(), LOOPBACK)
    assert [r.connection for r in kept.requests] == [1, 2, 3]


async def test_a_worker_keeps_its_connections_and_closes_them_when_it_stops(
    secret: str, tmp_path: Path
) -> None:
    kept = Receiver([secret], keep_alive=True, idle_close=60)
    app = Corral(f"sqlite:///{tmp_path / 'kept.db'}", notifications=LOOPBACK)
    hook = Webhook(kept.url("/ok"), secret=secret, events=["completed"])

    @app.task(name="kept.noop", queue="kept", notify=[hook])
    async def noop(i: int) -> int:
        return i

    @app.task(name="kept.send", queue="kept")
    async def send(i: int) -> None:
        await hook.send({"i": i}, id=f"own-{i}", settings=LOOPBACK)

    worker = Worker(app, ["kept"], concurrency=1)
    try:
        for i in range(5):
            await noop.enqueue(i)
            await send.enqueue(i)
        running = asyncio.create_task(worker.run())
        await wait_until(lambda: len(kept.requests) == 10, timeout=10)
        connection = kept.connections[0]
        assert connection.fileno() != -1  # kept open while the worker runs
        worker.stop()
        await running
        # Closed by the worker as it stopped: the receiver's end saw it and closed too.
        await wait_until(lambda: connection.fileno() == -1, timeout=2)
    finally:
        await app.close()
        kept.close()
    # One delivery at a time: one connection for all of them (notifications and sends).
    assert {r.connection for r in kept.requests} == {1}
    assert sorted(r.headers["webhook-id"][:4] for r in kept.requests) == ["msg_"] * 5 + ["own-"] * 5
    assert all(r.verified_with == [secret] for r in kept.requests)
