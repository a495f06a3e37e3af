"""A redis-py client whose ordinary commands share one pipelined connection.

redis-py's asyncio client takes a pooled connection for every command: with fifty
jobs in flight that is fifty sockets, and per command a pool lock, a health check,
a timeout scope and a write of its own. :class:`MuxRedis` sends every ordinary
command down one connection instead: the commands issued in one turn of the event
loop leave in one write, and since Redis answers in order, each reply resolves the
oldest waiting caller. That is ioredis's model (BullMQ's client), and per command it
costs a few microseconds instead of about forty.

Commands that would hold the connection (blocking pops, ``WAIT``), change its state
(``SELECT``, ``MULTI``/``WATCH``, ``CLIENT``, pub/sub) or need a decoding this path
does not do, keep redis-py's pooled path, as do pipelines and pub/sub objects. If the
shared connection cannot be opened, commands go through the pooled path. When it drops,
commands not yet written are sent again; a command already written raises
ConnectionError, because Redis may have run it: only the caller knows whether running
it twice is safe (the backend's :mod:`~corral.backends.redis.connection` decides).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
from typing import Any

import hiredis

from redis.asyncio import Redis
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:  # redis-py >= 5: the error-reply → exception class table lives here
    from redis._parsers import BaseParser

    _parse_error: Any = BaseParser.parse_error
except ImportError:  # pragma: no cover - a future redis-py moved it: plain errors
    _parse_error = ResponseError

__all__ = ["Link", "MuxRedis", "NotSent", "open_link", "pack"]

_pooled_execute: Any = Redis.execute_command  # redis-py's own (untyped) path

# Commands that must not share the connection: they block it, change its state for
# every later command, or switch it to another protocol mode.
_POOLED = frozenset(
    {
        "ASKING", "AUTH", "BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP",
        "BZPOPMAX", "BZPOPMIN", "CLIENT", "DEBUG", "DISCARD", "EXEC", "HELLO",
        "MONITOR", "MULTI", "PSUBSCRIBE", "PSYNC", "PUNSUBSCRIBE", "QUIT", "READONLY",
        "READWRITE", "RESET", "SELECT", "SSUBSCRIBE", "SUBSCRIBE", "SUNSUBSCRIBE",
        "SYNC", "UNSUBSCRIBE", "UNWATCH", "WAIT", "WAITAOF", "WATCH",
    }
)  # fmt: skip
_BLOCKING_READS = frozenset({"XREAD", "XREADGROUP"})  # blocking only with BLOCK
_RECONNECT_PAUSE = 1.0  # seconds on the pooled path after the shared link failed


# A failover turned the server into a replica: nothing was written (a replica refuses
# writes; a blocking pop was ended unserved), and a new connection reaches the new
# primary (through Sentinel, or a DNS name that now points there), so the connection
# counts as lost, as redis-py's SentinelManagedConnection also treats it.
_DEMOTED_UNBLOCKED = "UNBLOCKED force unblock from blocking operation, instance state changed"


def _demoted(reply: ResponseError) -> bool:
    return isinstance(reply, ReadOnlyError) or str(reply).startswith(_DEMOTED_UNBLOCKED)


class NotSent(RedisConnectionError):
    """The connection failed before this command was written: Redis never saw it."""


class Link(asyncio.Protocol):
    """One connected socket; replies resolve the waiting futures in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        self._loop = loop
        self._timeout = timeout
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=_parse_error)
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._out: list[bytes] = []
        self._flush_due = False
        self._transport: asyncio.Transport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._replies = 0
        self._watchdog: asyncio.TimerHandle | None = None
        self.broken: Exception | None = None
        #: The server's (host, port), as connected to.
        self.peer: tuple[str, int] | None = None

    def attach(self, writer: asyncio.StreamWriter) -> None:
        # The writer is kept: it warns when collected while its socket is open.
        self._writer = writer
        transport: Any = writer.transport
        transport.set_protocol(self)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = (str(peer[0]), int(peer[1]))

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        future = self._loop.create_future()
        self._waiting.append(future)
        self._out.append(packed)
        if not self._flush_due:
            # Everything issued in this turn of the loop leaves in one write.
            self._flush_due = True
            self._loop.call_soon(self._flush)
        if self._watchdog is None and self._timeout:
            self._watch(self._replies)
        return future

    def _flush(self) -> None:
        self._flush_due = False
        if self._out and self._transport is not None and self.broken is None:
            data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
            self._out.clear()
            self._transport.write(data)

    def _watch(self, seen: int) -> None:
        assert self._timeout is not None
        self._watchdog = self._loop.call_later(self._timeout, self._check, seen)

    def _check(self, seen: int) -> None:
        # No reply for a whole timeout with commands waiting: the peer is gone or
        # stuck, as redis-py's socket_timeout would have decided.
        self._watchdog = None
        if not self._waiting:
            return
        if self._replies == seen:
            self._break(RedisTimeoutError(f"no reply from Redis in {self._timeout} s"))
        else:
            self._watch(self._replies)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        try:
            while (reply := reader.gets()) is not False:
                self._replies += 1
                future = waiting.popleft()
                if isinstance(reply, ResponseError) and _demoted(reply):
                    said = f"READONLY {reply}" if isinstance(reply, ReadOnlyError) else reply
                    lost = RedisConnectionError(f"Redis is no longer the primary ({said})")
                    if not future.done():
                        future.set_exception(lost)
                    self._break(lost)
                    return
                if not future.done():
                    future.set_result(reply)
        except InvalidResponse as exc:
            self._break(RedisConnectionError(f"unreadable reply from Redis: {exc}"))
        except IndexError:
            self._break(RedisConnectionError("Redis sent a reply nobody asked for"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._break(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def _break(self, error: Exception) -> None:
        if self.broken is None:
            self.broken = error
        # The last len(_out) waiting commands were never written.
        written = len(self._waiting) - len(self._out)
        self._out.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._transport is not None:
            self._transport.abort()
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(self.broken if written > 0 else NotSent(str(self.broken)))
            written -= 1

    def close(self, error: Exception | None = None) -> None:
        """Close the socket; waiting commands fail with ``error`` (default: closed)."""
        self._break(error or RedisConnectionError("the client was closed"))


async def open_link(client: Redis) -> Link | None:
    """A new connection of ``client``'s pool, taken over by a :class:`Link` whose
    replies resolve futures as they are parsed (no reader task, no per-command
    timeout scope; the pool's socket timeout bounds the wait for a reply). None when
    this redis-py does not expose the socket; connection errors propagate."""
    pool = client.connection_pool
    # redis-py connects and does the handshake (TLS, AUTH, SELECT, client name); the
    # socket is then taken over.
    conn: Any = pool.connection_class(**pool.connection_kwargs)
    await conn.connect()
    writer = getattr(conn, "_writer", None)
    if not isinstance(writer, asyncio.StreamWriter):  # pragma: no cover
        await conn.disconnect()
        return None
    link = Link(asyncio.get_running_loop(), pool.connection_kwargs.get("socket_timeout"))
    link.attach(writer)
    conn._writer = conn._reader = None  # the link owns the socket now
    return link


# Command name as given -> "pooled", "blocking read" or "" (shared connection): every
# command asks, and most names repeat.
_ROUTES: dict[Any, str] = {}


def _route(given: Any) -> str:
    route = _ROUTES.get(given) if isinstance(given, (str, bytes)) else None
    if route is None:
        name = (given.decode() if isinstance(given, bytes) else str(given)).upper()
        route = "pooled" if name in _POOLED else "blocking read" if name in _BLOCKING_READS else ""
        if isinstance(given, (str, bytes)) and len(_ROUTES) < 1000:
            _ROUTES[given] = route
    return route


def _pooled_only(args: tuple[Any, ...]) -> bool:
    route = _route(args[0])
    if route != "blocking read":
        return route == "pooled"
    for arg in args[1:]:
        if isinstance(arg, bytes):
            arg = arg.decode(errors="replace")
        if isinstance(arg, str) and arg.upper() == "BLOCK":
            return True
    return False


def pack(args: tuple[Any, ...], client: Any) -> bytes:
    name = args[0]
    if isinstance(name, str) and " " in name:  # redis-py's "SCRIPT LOAD" style names
        args = (*name.split(), *args[1:])
    try:
        packed: bytes = hiredis.pack_command(args)
    except TypeError:
        # Not str/bytes/int/float: redis-py's encoder accepts (memoryview) or refuses
        # (None, bool, dict...) with its own DataError.
        encoder = client.connection_pool.get_encoder()
        encoded: Any = tuple(bytes(encoder.encode(a)) for a in args)
        packed = hiredis.pack_command(encoded)
    return packed


class MuxRedis(Redis):
    """``redis.asyncio.Redis`` with ordinary commands pipelined on one connection.

    Everything else about the client (its commands, reply parsing, pipelines, pub/sub,
    URL options) is redis-py's. Replies are bytes (``decode_responses`` and RESP3
    clients keep the pooled path throughout).
    """

    _link: Link | None = None
    _link_opening: asyncio.Future[Link | None] | None = None
    _link_retry_at = 0.0

    def _mux_allowed(self) -> bool:
        kwargs = self.connection_pool.connection_kwargs
        return not kwargs.get("decode_responses") and str(kwargs.get("protocol") or 2) == "2"

    async def _open_link(self) -> Link | None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._link_retry_at or not self._mux_allowed():
            return None
        opening = self._link_opening
        if opening is not None:
            return await asyncio.shield(opening)
        opening = self._link_opening = loop.create_future()
        link: Link | None = None
        try:
            link = await open_link(self)
            if link is None:  # pragma: no cover - a redis-py without _writer
                self._link_retry_at = float("inf")
        except (RedisConnectionError, RedisTimeoutError, OSError):
            self._link_retry_at = loop.time() + _RECONNECT_PAUSE
        finally:
            self._link = link
            self._link_opening = None
            opening.set_result(link)
        return link

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if _pooled_only(args):
            return await _pooled_execute(self, *args, **options)
        link = self._link
        if link is None or link.broken is not None:
            link = await self._open_link()
            if link is None:
                return await _pooled_execute(self, *args, **options)
        try:
            # Error replies arrive as exception objects (the reader's replyError).
            reply = await link.send(pack(args, self))
        except NotSent:
            # Redis never saw it: sending it again cannot run it twice. (A command
            # that was written raises: it may have run.)
            return await _pooled_execute(self, *args, **options)
        if isinstance(reply, Exception):
            # Not only ResponseError: -LOADING is BusyLoadingError, a ConnectionError.
            if EMPTY_RESPONSE in options and isinstance(reply, ResponseError):
                return options[EMPTY_RESPONSE]
            raise reply
        options.pop(EMPTY_RESPONSE, None)
        options.pop(NEVER_DECODE, None)
        options.pop("keys", None)
        callback = self.response_callbacks.get(args[0])
        if callback is None:
            return reply
        value = callback(reply, **options)
        return await value if inspect.isawaitable(value) else value

    def drop_link(
        self, error: Exception | None = None, keep: tuple[str, int] | None = None
    ) -> None:
        """Close the shared connection unless it is to ``keep`` (commands waiting on
        it fail with ``error``); the next command opens a new one."""
        if self._link is not None and (keep is None or self._link.peer != keep):
            self._link.close(error)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the shared connection and the pool."""
        if self._link is not None:
            self._link.close()
            self._link = None
        await super().aclose(close_connection_pool)
