"""The SSRF guard: non-public addresses refused before anything is connected, the
allow-list opening them on purpose, and the request going to the address checked."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from corral.errors import ConfigurationError
from corral.notify import Webhook
from corral.notify.base import DeliveryError, NotifySettings
from corral.notify.ssrf import AllowList, blocked_range
from tests.notify.conftest import FakeDNS, make_notice
from tests.notify.receiver import Receiver

NO_ALLOW = NotifySettings(timeout=5.0)


@pytest.mark.parametrize(
    ("host", "address", "where"),
    [
        ("127.0.0.1", "127.0.0.1", "127.0.0.0/8 (loopback)"),
        ("localhost", "127.0.0.1", "127.0.0.0/8 (loopback)"),
        ("[::1]", "::1", "::1/128 (loopback)"),
        ("[::ffff:127.0.0.1]", "127.0.0.1", "127.0.0.0/8 (loopback)"),
        ("2130706433", "127.0.0.1", "127.0.0.0/8 (loopback)"),  # 127.0.0.1 as one number
        ("0.0.0.0", "0.0.0.0", "0.0.0.0/8"),
        ("[::]", "::", "::/128 (unspecified)"),
        ("10.0.0.1", "10.0.0.1", "10.0.0.0/8 (private)"),
        ("172.16.5.4", "172.16.5.4", "172.16.0.0/12 (private)"),
        ("192.168.1.1", "192.168.1.1", "192.168.0.0/16 (private)"),
        ("[fd12:3456::1]", "fd12:3456::1", "fc00::/7"),
        ("169.254.169.254", "169.254.169.254", "169.254.0.0/16 (link-local, cloud metadata)"),
        ("[::ffff:169.254.169.254]", "169.254.169.254", "169.254.0.0/16"),
        ("[fe80::1]", "fe80::1", "fe80::/10 (link-local)"),
        ("[fec0::1]", "fec0::1", "fec0::/10 (site-local"),
        ("100.64.0.1", "100.64.0.1", "100.64.0.0/10 (carrier-grade NAT)"),
        ("224.0.0.1", "224.0.0.1", "224.0.0.0/4 (multicast)"),
        ("[ff02::1]", "ff02::1", "ff00::/8 (multicast)"),
        ("255.255.255.255", "255.255.255.255", "240.0.0.0/4 (reserved, broadcast)"),
        ("[64:ff9b::a00:1]", "64:ff9b::a00:1", "carrying 10.0.0.1, in 10.0.0.0/8"),  # NAT64
        ("[2002:7f00:1::]", "2002:7f00:1::", "carrying 127.0.0.1, in 127.0.0.0/8"),  # 6to4
    ],
)
async def test_non_public_addresses_are_refused_before_connecting(
    receiver: Receiver, secret: str, host: str, address: str, where: str
) -> None:
    # On the receiver's port: the loopback forms would reach it if the guard let them.
    hook = Webhook(f"http://{host}:{receiver.port}/ok", secret=secret)
    with pytest.raises(DeliveryError) as caught:
        await hook.deliver(make_notice(), NO_ALLOW)
    assert not caught.value.retry and not caught.value.gone
    message = str(caught.value)
    assert address in message and where in message, message
    assert receiver.requests == []


@pytest.mark.parametrize("allow", [("127.0.0.1",), ("127.0.0.0/8",), ("localhost",)])
async def test_the_allow_list_opens_loopback(
    receiver: Receiver, secret: str, allow: tuple[str, ...]
) -> None:
    # "localhost" may resolve to ::1 first, where nothing listens: the next address is tried.
    host = "localhost" if allow == ("localhost",) else "127.0.0.1"
    await Webhook(receiver.url(host=host), secret=secret).deliver(
        make_notice(), NotifySettings(allow=allow)
    )
    assert [r.verified_with for r in receiver.requests] == [[secret]]


async def test_the_allow_list_opens_only_what_it_names(secret: str) -> None:
    settings = NotifySettings(allow=("127.0.0.1", "192.168.0.0/24", "hooks.internal"))
    with pytest.raises(DeliveryError, match=r"10\.0\.0\.1 is in 10\.0\.0\.0/8"):
        await Webhook("http://10.0.0.1/", secret=secret).deliver(make_notice(), settings)
    with pytest.raises(DeliveryError, match=r"192\.168\.1\.5 is in 192\.168\.0\.0/16"):
        await Webhook("http://192.168.1.5/", secret=secret).deliver(make_notice(), settings)


async def test_no_second_resolution_dns_rebinding(
    receiver: Receiver, secret: str, dns: FakeDNS
) -> None:
    # The first answer is allowed; any later lookup would answer a private address.
    dns.answers["rebind.test"] = [["127.0.0.1"], ["10.0.0.1"]]
    hook = Webhook(receiver.url(host="rebind.test"), secret=secret)
    await hook.deliver(make_notice(), NotifySettings(allow=("127.0.0.1",)))
    assert dns.lookups == ["rebind.test"]  # resolved once, by the guard
    [got] = receiver.requests
    assert got.peer == "127.0.0.1" and got.headers["host"] == f"rebind.test:{receiver.port}"
    assert got.verified_with == [secret]


async def test_a_mixed_answer_is_refused(receiver: Receiver, secret: str, dns: FakeDNS) -> None:
    dns.answers["mixed.test"] = [["127.0.0.1", "10.0.0.1"]]
    hook = Webhook(receiver.url(host="mixed.test"), secret=secret)
    with pytest.raises(DeliveryError) as caught:
        await hook.deliver(make_notice(), NotifySettings(allow=("127.0.0.1",)))
    assert "'mixed.test' resolves to 10.0.0.1, which is in 10.0.0.0/8" in str(caught.value)
    assert receiver.requests == []


async def test_the_next_checked_address_is_tried_when_one_refuses(
    receiver: Receiver, secret: str, dns: FakeDNS
) -> None:
    dns.answers["two.test"] = [["127.0.0.2", "127.0.0.1"]]  # nothing listens on 127.0.0.2
    hook = Webhook(receiver.url(host="two.test"), secret=secret)
    await hook.deliver(make_notice(), NotifySettings(allow=("127.0.0.0/8",)))
    assert len(receiver.requests) == 1 and dns.lookups == ["two.test"]


async def test_a_name_that_does_not_resolve_is_retried(secret: str, dns: FakeDNS) -> None:
    dns.answers["gone.test"] = [socket.gaierror(socket.EAI_NONAME, "Name or service not known")]
    with pytest.raises(DeliveryError) as caught:
        await Webhook("https://gone.test/", secret=secret).deliver(make_notice(), NO_ALLOW)
    assert caught.value.retry and "cannot resolve host 'gone.test'" in str(caught.value)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::"]
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_range(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "entry", ["http://example.com", "10.0.0.0/33", "example.com:8080", "", "a b"]
)
def test_a_bad_allow_entry_is_named(entry: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        AllowList.parse([entry])
    assert repr(entry) in str(caught.value)


def test_allow_entries_parse() -> None:
    allow = AllowList.parse(["Hooks.Example.COM.", "10.1.0.0/16", "[::1]", "127.0.0.1"])
    assert allow.hosts == {"hooks.example.com"}
    assert allow.opens(ipaddress.ip_address("10.1.2.3"))
    assert allow.opens(ipaddress.ip_address("::1"))
    assert not allow.opens(ipaddress.ip_address("10.2.0.1"))
