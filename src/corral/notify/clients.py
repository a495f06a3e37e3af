"""Kept-alive HTTP clients for webhook deliveries.

A worker keeps its webhook connections open between deliveries (one TCP connection and
one TLS handshake for a burst of notifications to an endpoint, not one per delivery):
:class:`WebhookClients` holds ``httpx.AsyncClient`` s per **(scheme, host name, port,
trusted CAs)**, made on first use and closed when the worker stops.

Why clients per host name, not one pool for everything: the SSRF guard sends each
request to the IP address it checked (:mod:`corral.notify.ssrf`), and httpcore pools
connections by the request's origin, which is then that address. Two names served from
one address would share a connection, and with it a TLS session whose certificate
was verified for the *other* name. Inside one client every request carries the same
name, so whatever connection it reuses was opened (SNI, certificate check) for that
name; a client also never mixes CA bundles (``SSL_CERT_FILE`` / ``SSL_CERT_DIR``).

The guard still resolves and checks the name on every delivery, kept connection or
not: a name that now resolves to a private address is refused before anything is sent.
Clients keep no cookies (a receiver's ``Set-Cookie`` must not follow another
webhook's delivery to the same host). Bounds: :data:`MAX_HOSTS` keys (the least
recently used one is closed past that), :data:`PER_HOST` kept connections each (in
clients of :data:`LANE`), and :data:`IDLE` seconds before an idle connection or key is
closed.

Outside a worker (``Webhook.send`` in a script, a web handler...) there is no
:class:`WebhookClients` in the context unless you open one (``async with
WebhookClients() as clients, clients.installed(): ...``): each delivery then uses a
client of its own, closed at once, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import http.cookiejar
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # httpx comes with the notify extra; the worker imports this module
    import httpx

__all__ = [
    "IDLE",
    "LANE",
    "MAX_HOSTS",
    "PER_HOST",
    "ClientKey",
    "WebhookClients",
    "current",
    "lease",
]

#: Clients (distinct scheme, host, port, CA bundle) kept at once.
MAX_HOSTS: Final = 32
#: Deliveries at once to one host that keep their connections (more may run: a burst
#: is not held up, its extra connections are closed after it).
PER_HOST: Final = 64
#: Deliveries at once per client: a host's deliveries are spread over clients of
#: this many connections each, as httpcore's pool spends time in the square of its
#: connections at every request (and closes a connection turning idle whenever it
#: holds more than its keep-alive limit, ``2 * LANE`` here, in all).
LANE: Final = 8
#: Seconds an idle connection, or a client nobody used, is kept.
IDLE: Final = 15.0

#: (scheme, host name as sent, port, (SSL_CERT_FILE, SSL_CERT_DIR)).
ClientKey = tuple[str, str, int, tuple[str | None, str | None]]

_current: contextvars.ContextVar[WebhookClients | None] = contextvars.ContextVar(
    "corral_webhook_clients", default=None
)


def current() -> WebhookClients | None:
    """The clients installed in this context (a worker's), if any."""
    return _current.get()


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False


def make_client(verify: ssl.SSLContext, *, keep: int, idle: float) -> httpx.AsyncClient:
    """A client as webhooks need it: no redirects, no proxy from the environment (the
    request must go to the checked address), no cookies, ``keep`` idle connections."""
    import httpx

    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        verify=verify,
        cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
        limits=httpx.Limits(
            max_connections=None, max_keepalive_connections=keep, keepalive_expiry=idle
        ),
    )


@dataclass(slots=True)
class _Entry:
    """The clients of one key: a few, each with few connections (httpcore's pool costs
    time in the square of its connections at every request and response)."""

    clients: list[httpx.AsyncClient]
    loads: list[int]  # deliveries under way, per client
    used: float = field(default_factory=time.monotonic)
    retired: bool = False

    @property
    def active(self) -> int:
        return sum(self.loads)


class WebhookClients:
    """Kept-alive webhook clients, one per :data:`ClientKey` (see the module's
    docstring). ``async with WebhookClients() as clients`` closes them all on exit;
    :meth:`installed` makes deliveries in the block use them."""

    def __init__(
        self, *, max_hosts: int = MAX_HOSTS, per_host: int = PER_HOST, idle: float = IDLE
    ) -> None:
        if max_hosts < 1 or per_host < 0 or idle <= 0:
            raise ValueError("WebhookClients: max_hosts >= 1, per_host >= 0 and idle > 0")
        self.max_hosts = max_hosts
        self.per_host = per_host
        self.idle = idle
        self.closed = False
        self._entries: OrderedDict[ClientKey, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def __aenter__(self) -> WebhookClients:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def installed(self) -> _Installed:
        """``with`` (or ``async with``) it: deliveries in the block, and in the tasks
        it starts, use these clients."""
        return _Installed(self)

    @contextlib.asynccontextmanager
    async def lease(
        self, key: ClientKey, verify: ssl.SSLContext
    ) -> AsyncIterator[httpx.AsyncClient]:
        """The client for ``key`` for one delivery (a client of its own once closed)."""
        if self.closed:
            async with make_client(verify, keep=0, idle=self.idle) as client:
                yield client
            return
        await self._sweep(key)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry([], [])
        self._entries.move_to_end(key)
        lane = min(range(len(entry.loads)), key=entry.loads.__getitem__, default=-1)
        if lane < 0 or (entry.loads[lane] >= LANE and len(entry.clients) * LANE < self.per_host):
            entry.clients.append(make_client(verify, keep=2 * LANE, idle=self.idle))
            entry.loads.append(0)
            lane = len(entry.clients) - 1
        entry.loads[lane] += 1
        try:
            yield entry.clients[lane]
        finally:
            entry.loads[lane] -= 1
            entry.used = time.monotonic()
            if entry.retired and entry.active == 0:
                await _close(entry)

    async def _sweep(self, keep: ClientKey) -> None:
        """Drop the clients idle for longer than ``idle``, and the least recently used
        past ``max_hosts - 1`` (room for ``keep``); one in use is closed when its last
        delivery ends."""
        now = time.monotonic()
        for key, entry in list(self._entries.items()):
            over = len(self._entries) >= self.max_hosts and key != keep
            stale = entry.active == 0 and now - entry.used > self.idle
            if not (over or stale):
                continue
            del self._entries[key]
            entry.retired = True
            if entry.active == 0:
                await _close(entry)

    async def aclose(self) -> None:
        """Close every client and connection (a delivery still running fails); later
        deliveries use a client of their own."""
        self.closed = True
        entries = list(self._entries.values())
        self._entries.clear()
        for entry in entries:
            entry.retired = True
            await _close(entry)


class _Installed:
    def __init__(self, clients: WebhookClients) -> None:
        self.clients = clients
        self.tokens: list[contextvars.Token[WebhookClients | None]] = []

    def __enter__(self) -> WebhookClients:
        self.tokens.append(_current.set(self.clients))
        return self.clients

    def __exit__(self, *exc: object) -> None:
        _current.reset(self.tokens.pop())

    async def __aenter__(self) -> WebhookClients:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()


async def _close(entry: _Entry) -> None:
    with contextlib.suppress(Exception):
        # Shielded: a delivery cancelled by its timeout still closes its sockets.
        for client in entry.clients:
            await asyncio.shield(client.aclose())


@contextlib.asynccontextmanager
async def lease(key: ClientKey, verify: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    """A client for one delivery: the installed :class:`WebhookClients`' kept one for
    ``key``, else one of its own, closed on exit."""
    clients = _current.get()
    if clients is not None:
        async with clients.lease(key, verify) as client:
            yield client
        return
    async with make_client(verify, keep=0, idle=IDLE) as client:
        yield client
