"""The SSRF guard webhooks are sent through.

A webhook URL is chosen by whoever configures the job, and the worker sending it sits
inside the network: left alone it would post to ``169.254.169.254`` (cloud
credentials), to ``localhost`` admin ports or to private services. So a webhook's host
is resolved **once**; every address it resolves to must be public (or opened by
``NotifySettings.allow``), else nothing is sent; and the request then goes to the
address that was checked, never to the name again: a second resolution could answer
differently (DNS rebinding). The name still travels in the ``Host`` header and in TLS
(SNI and certificate verification), so virtual hosts and HTTPS work as usual.

Every address must pass, not just one: an answer mixing a public and a private
address is a known way around guards that check one address and connect to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import httpx

from corral.errors import ConfigurationError
from corral.notify.base import DeliveryError

__all__ = ["AllowList", "blocked_range", "resolve", "stream"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in pairs)


_BLOCKED_V4: Final = _nets(
    ("0.0.0.0/8", "unspecified / this network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local, cloud metadata"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved, broadcast"),
)
_BLOCKED_V6: Final = _nets(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
# IPv6 prefixes that carry an IPv4 address, which is then what gets reached.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour  # None outside 2002::/16


def blocked_range(address: Address) -> str | None:
    """The range that makes ``address`` unsafe to post to, as ``"10.0.0.0/8
    (private)"``; ``None`` for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        inner = blocked_range(address.ipv4_mapped)
        return f"{inner} as an IPv4-mapped address" if inner else None
    table = _BLOCKED_V4 if isinstance(address, ipaddress.IPv4Address) else _BLOCKED_V6
    for network, label in table:
        if address in network:
            return f"{network} ({label})"
    if isinstance(address, ipaddress.IPv6Address):
        v4 = _embedded_v4(address)
        if v4 is not None:
            inner = blocked_range(v4)
            prefix = _NAT64 if address in _NAT64 else _SIX_TO_FOUR
            return f"{prefix} carrying {v4}, in {inner}" if inner else None
    if not address.is_global:  # whatever the tables above missed
        return "a range that is not globally routable"
    return None


_HOSTNAME: Final = re.compile(
    r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$"
)


def _host_key(host: str) -> str:
    return host.strip().lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class AllowList:
    """The hosts and address ranges ``NotifySettings.allow`` opens."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """``entries`` (host names, IP addresses, CIDR ranges) as an allow-list, else
        ConfigurationError naming the entry that is none of those."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for entry in entries:
            if not isinstance(entry, str) or not entry.strip():
                raise ConfigurationError(
                    f"NotifySettings(allow=...): {entry!r} is not a host name, IP address or range"
                )
            text = entry.strip().removeprefix("[").removesuffix("]")
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            name = _host_key(text)
            with contextlib.suppress(UnicodeError):  # a name idna refuses is refused below
                name = name.encode("idna").decode("ascii")
            if "/" in text or not _HOSTNAME.match(name):
                raise ConfigurationError(
                    f"NotifySettings(allow=...): {entry!r} is not a host name, IP address or "
                    "CIDR range (no scheme, port or path)"
                )
            hosts.add(name)
        return cls(frozenset(hosts), tuple(networks))

    def opens(self, address: Address) -> bool:
        """Whether ``address`` falls in an allowed range."""
        return any(address.version == n.version and address in n for n in self.networks)


async def resolve(host: str, port: int, allow: AllowList) -> list[Address]:
    """Resolve ``host`` once and return its addresses, in the resolver's order, after
    checking every one: DeliveryError (not retried) when any is blocked and not
    allowed; DeliveryError (retried) when the name does not resolve."""
    loop = asyncio.get_running_loop()
    try:
        answers = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as exc:
        raise DeliveryError(f"cannot resolve host {host!r}: {exc.strerror}", retry=True) from None
    except UnicodeError:
        raise DeliveryError(f"host {host!r} is not a valid name", retry=False) from None
    addresses: list[Address] = []
    for *_, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # reached as IPv4 anyway; checked and allowed as such
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DeliveryError(f"host {host!r} resolved to no address", retry=True)
    if _host_key(host) in allow.hosts:
        return addresses
    for address in addresses:
        where = blocked_range(address)
        if where is not None and not allow.opens(address):
            shown = host if host == str(address) else f"{host!r} resolves to {address}, which"
            raise DeliveryError(
                f"refused: {shown} is in {where}, not a public address "
                "(NotifySettings(allow=[...]) opens a host or range on purpose)",
                retry=False,
            )
    return addresses


#: Errors of a request on a kept-alive connection that the receiver had closed (its
#: idle timeout ran out as the request left): sent again once, on another connection.
_STALE: Final = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


@asynccontextmanager
async def stream(
    client: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    allow: AllowList,
    headers: Mapping[str, str],
    content: bytes,
    timeout: float | None = None,
) -> AsyncIterator[httpx.Response]:
    """Send one request through the guard and yield the response (its body unread).

    The request goes to a checked address: the URL's host replaced by the address,
    the name kept in ``Host`` and, for HTTPS, as the TLS server name (SNI and the
    certificate check, httpcore's ``sni_hostname`` extension). When an address refuses
    the connection, the next one is tried: nothing was sent to the first. When none
    connects: DeliveryError (retried). The name is resolved and checked on every call,
    whatever connections ``client`` keeps: give it a client that only ever sends to
    this name (:mod:`corral.notify.clients`), as its connections are pooled by address.
    A request that fails on a reused connection before any answer (the receiver
    closed it meanwhile) is sent once more, the same bytes: a receiver may then see
    it twice, with the same headers (``webhook-id``) to dedupe on.
    """
    url = httpx.URL(url)
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await resolve(host, port, allow)
    sent_headers = {**headers, "Host": url.netloc.decode("ascii")}
    failure: httpx.TransportError | None = None
    for address in addresses:
        connected = False

        async def trace(event: str, info: Mapping[str, object]) -> None:
            nonlocal connected
            if event == "connection.connect_tcp.started":
                connected = True

        extensions: dict[str, object] = {"trace": trace}
        if url.scheme == "https":
            extensions["sni_hostname"] = host
        request = client.build_request(
            method,
            url.copy_with(host=str(address)),
            headers=sent_headers,
            content=content,
            extensions=extensions,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
        )
        try:
            try:
                response = await client.send(request, stream=True)
            except _STALE:
                if connected:  # a fresh connection failed: not a stale one
                    raise
                response = await client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            failure = exc
            continue
        try:
            yield response
        finally:
            await response.aclose()
        return
    tried = ", ".join(f"[{a}]:{port}" if a.version == 6 else f"{a}:{port}" for a in addresses)
    reason = str(failure) or type(failure).__name__
    raise DeliveryError(f"cannot connect to {tried} ({reason})", retry=True)
