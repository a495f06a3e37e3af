"""One pub/sub connection per backend, shared by every listener.

Result waiters, event streams and workers' cancellation watchers subscribe to
channels here (and the all-queue event stream to a pattern); a single reader task
dispatches each message to the handlers of its channel or pattern. A channel (or
pattern) is subscribed while it has handlers: the first listener sends ``SUBSCRIBE``
(``PSUBSCRIBE``), the last one to leave has it unsubscribed.

Nothing here may wedge a listener: a ``SUBSCRIBE`` that fails (sent to a server
that is down, refused by an ACL, lost with its connection) is forgotten, so the next
listener sends it again, and each listener waits for the confirmation only as long
as it was told to.

A lost connection is the backend's :class:`~corral.backends.redis.connection.Reconnect`
business: a subscription is tried again while it lasts (up to ``reconnect_timeout``),
and the reader reports the outage there, so the log says once that the connection was
lost and once that it is back, for the hub and the backend's calls together.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any, Protocol, TypeVar

from corral.backends.redis.connection import Reconnect
from corral.backends.redis.wait import retrieved
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["SUBSCRIBE_TIMEOUT", "EventStream", "Hub", "HubClosed", "Inbox", "Subscriber"]

log = logging.getLogger("corral.redis")

Handler = Callable[[bytes], None]
#: A pattern's handler: ``handler(channel, data)``.
PatternHandler = Callable[[bytes, bytes], None]
#: A subscription: (is it a pattern, the channel or pattern).
Key = tuple[bool, bytes]

#: Seconds a listener without a deadline of its own waits for Redis to confirm.
SUBSCRIBE_TIMEOUT = 10.0
_PAUSE_AFTER_ERROR = 0.5
#: Seconds of silence after which the reader PINGs, and then seconds it waits for any
#: reply before it counts the connection as lost: a peer gone silently (a paused or
#: partitioned server) is noticed within their sum, where reads alone never would be.
PING_AFTER = 5.0
PONG_TIMEOUT = 5.0
# Shard channels' replies read as the plain ones (a sharded hub's own handling aside).
_SHARD_KINDS = {"ssubscribe": "subscribe", "smessage": "message"}


class HubClosed(RedisError):
    """The hub was closed while a listener waited (a cluster node's hub replaced)."""


class Subscriber(Protocol):
    """What listeners need of a hub: :class:`Hub`, or a cluster's ``ShardedHub``."""

    async def subscribe(
        self, channel: str, handler: Handler, timeout: float | None = ...
    ) -> Callable[[], None]: ...

    def on_gap(self, listener: Callable[[], None]) -> Callable[[], None]: ...

    async def close(self) -> None: ...


class Hub:
    """Channel subscriptions multiplexed over one connection of ``client``;
    ``reconnect`` is the backend's connection state (see the module doc)."""

    def __init__(
        self,
        client: Redis,
        reconnect: Reconnect,
        *,
        sharded: bool = False,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._client = client
        self._reconnect = reconnect
        # One node of a cluster (see sharded.py): channels are shard channels
        # (SSUBSCRIBE), and a lost connection or a channel Redis moved away is
        # ``on_lost``'s business, not a reconnection to this node.
        self._sharded = sharded
        self._on_lost = on_lost
        self._closed = False
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        # Handlers per channel, counted: one handler may serve several listeners.
        self._handlers: dict[Key, dict[Any, int]] = {}
        # Per channel, resolved when Redis confirmed the SUBSCRIBE (or failed with it).
        self._confirmed: dict[Key, asyncio.Future[None]] = {}
        self._idle: set[Key] = set()  # channels whose last handler left
        self._lock = asyncio.Lock()
        # Called once the subscriptions are back after a lost connection: messages
        # published meanwhile were never delivered.
        self._gap_listeners: set[Callable[[], None]] = set()
        self._broken = False
        self._heard_at = 0.0
        self._pinged_at: float | None = None
        self._stale: Exception | None = None  # see reconnect_soon

    async def subscribe(
        self, channel: str, handler: Handler, timeout: float | None = SUBSCRIBE_TIMEOUT
    ) -> Callable[[], None]:
        """Call ``handler(data)`` for each message on ``channel`` from now on; returns
        the function that stops it.

        Returns only once the server has confirmed the subscription, so a caller
        that reads state afterwards cannot miss a message published in between.
        Raises TimeoutError when that takes over ``timeout`` seconds (None: the
        caller bounds the wait), and the connection's error when the subscription
        failed (with the connection down: once it has been for ``reconnect_timeout``);
        either way nothing stays registered.
        """
        return await self._listen((False, channel.encode()), handler, timeout)

    async def psubscribe(
        self, pattern: str, handler: PatternHandler, timeout: float | None = SUBSCRIBE_TIMEOUT
    ) -> Callable[[], None]:
        """:meth:`subscribe` for a glob-style pattern: ``handler(channel, data)`` is
        called for each message on every channel that matches."""
        return await self._listen((True, pattern.encode()), handler, timeout)

    def on_gap(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` each time the subscriptions are confirmed again after a
        lost connection (messages published while it was down are lost); returns the
        function that stops it."""
        self._gap_listeners.add(listener)
        return functools.partial(self._gap_listeners.discard, listener)

    async def _listen(self, key: Key, handler: Any, timeout: float | None) -> Callable[[], None]:
        counts = self._handlers.setdefault(key, {})
        counts[handler] = counts.get(handler, 0) + 1
        try:
            async with asyncio.timeout(timeout):
                await self._reconnect.call(functools.partial(self._confirm, key))
        except BaseException:
            self._drop(key, handler)
            raise
        return functools.partial(self._drop, key, handler)

    async def _confirm(self, key: Key) -> None:
        # Safe to repeat: a failed SUBSCRIBE is forgotten (see _send_subscribe).
        if self._closed:  # not a lost connection: no use trying again here
            raise HubClosed("the pub/sub hub was closed")
        async with self._lock:
            confirmed = self._confirmed.get(key)
            if confirmed is None:
                confirmed = await self._send_subscribe(key)
        # Shielded: a listener that gives up must not cancel the others' wait.
        await asyncio.shield(confirmed)

    async def _send_subscribe(self, key: Key) -> asyncio.Future[None]:
        # Registered before SUBSCRIBE is sent, so the reader finds it whenever the
        # confirmation arrives; taken back if the send fails, so that the next
        # listener sends it again instead of waiting for a reply that cannot come.
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        confirmed.add_done_callback(retrieved)
        self._confirmed[key] = confirmed
        try:
            pattern, name = key
            pubsub = self._pubsub_of()
            if pattern:
                await pubsub.psubscribe(name)
            elif self._sharded:
                await pubsub.ssubscribe(name)
            else:
                await pubsub.subscribe(name)
        except BaseException:
            if self._confirmed.get(key) is confirmed:
                del self._confirmed[key]
            raise
        self._start_reader()
        return confirmed

    def _pubsub_of(self) -> PubSub:
        if self._pubsub is None:
            self._pubsub = self._client.pubsub()
        return self._pubsub

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="corral-pubsub")

    def _drop(self, key: Key, handler: Any) -> None:
        counts = self._handlers.get(key)
        if counts is None or handler not in counts:
            return
        counts[handler] -= 1
        if counts[handler] <= 0:
            del counts[handler]
        if not counts:
            del self._handlers[key]
            self._idle.add(key)
            if self._sweeper is None or self._sweeper.done():
                self._sweeper = asyncio.create_task(self._sweep(), name="corral-unsubscribe")

    async def _sweep(self) -> None:
        """Unsubscribe the channels nobody listens to any more (also those whose last
        listener left while an UNSUBSCRIBE was on its way)."""
        async with self._lock:
            while self._idle:
                idle = [key for key in self._idle if key not in self._handlers]
                self._idle.clear()
                for key in idle:
                    self._confirmed.pop(key, None)
                pubsub = self._pubsub
                if not idle or pubsub is None:
                    continue
                channels = [name for pattern, name in idle if not pattern]
                patterns = [name for pattern, name in idle if pattern]
                try:
                    if channels and self._sharded:
                        await pubsub.sunsubscribe(*channels)
                    elif channels:
                        await pubsub.unsubscribe(*channels)
                    if patterns:
                        await pubsub.punsubscribe(*patterns)
                except (RedisError, OSError) as exc:
                    # The connection is gone, and with it the subscriptions: make sure
                    # a reconnect does not subscribe them again.
                    log.debug("UNSUBSCRIBE failed (%s); dropping the channels", exc)
                    for name in channels:
                        pubsub.channels.pop(name, None)
                        pubsub.shard_channels.pop(name, None)
                    for name in patterns:
                        pubsub.patterns.pop(name, None)

    def _connection_lost(self, exc: BaseException) -> None:
        """Subscriptions are void with their connection: listeners still waiting for a
        confirmation get the error, and the next listener of any channel sends its
        SUBSCRIBE again (redis-py also re-sends the known ones once it reconnects)."""
        for confirmed in self._confirmed.values():
            if not confirmed.done():
                confirmed.set_exception(exc)
        self._confirmed.clear()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        self._heard_at, self._pinged_at = loop.time(), None
        while True:
            read_at = loop.time()
            try:
                pubsub = self._pubsub_of()
                if self._stale is not None:
                    await _disconnect(pubsub)
                    stale, self._stale = self._stale, None
                    raise stale
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    await self._watch(pubsub, loop.time())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the reader must outlive any trouble
                self._heard_at, self._pinged_at = loop.time(), None
                # redis-py reconnects on the next read and subscribes again to the
                # channels it knows; a refused SUBSCRIBE arrives here as an error.
                self._connection_lost(exc)
                self._broken = True
                if self._on_lost is not None:
                    # A cluster node's hub: the channels move to their owners now.
                    await self._reconnect.lost(exc, read_at)
                    self._on_lost()
                    return
                if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
                    await self._reconnect.lost(exc, read_at)  # logged once per outage
                    log.debug("pub/sub connection failed (%s); reconnecting", exc)
                else:
                    log.warning("pub/sub connection failed (%s); reconnecting", exc)
                await asyncio.sleep(_PAUSE_AFTER_ERROR)
                continue
            if message is None:
                # Not proof the connection is back: a silent peer also reads nothing.
                continue
            self._heard_at, self._pinged_at = loop.time(), None
            await self._reconnect.back(read_at)
            self._dispatch(message)

    async def _watch(self, pubsub: PubSub, now: float) -> None:
        """PING a connection silent for PING_AFTER seconds; raise TimeoutError (having
        closed it, so the next read reconnects and subscribes again) when nothing came
        back within PONG_TIMEOUT."""
        if self._pinged_at is None:
            if now - self._heard_at >= PING_AFTER:
                self._pinged_at = now
                await pubsub.ping()
            return
        if now - self._pinged_at < PONG_TIMEOUT:
            return
        await _disconnect(pubsub)
        raise RedisTimeoutError(f"no reply from Redis to a pub/sub PING in {PONG_TIMEOUT:g} s")

    def leave(self, keep: tuple[str, int], reason: str) -> None:
        """Replace the connection (within a second) unless it is to ``keep``: its
        server is no longer the one to listen to (``reason``). Listeners hear of the
        gap once it is back."""
        connection: Any = self._pubsub.connection if self._pubsub is not None else None
        if connection is None or not connection.is_connected:
            return  # its next connection goes to the primary named now
        if (connection.host, connection.port) == keep:
            return
        self._stale = RedisConnectionError(reason)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        kind = _SHARD_KINDS.get(kind, kind)
        if kind == "sunsubscribe":
            self._unsubscribed(channel)
            return
        if kind in ("subscribe", "psubscribe"):
            self._confirm_reply(kind == "psubscribe", channel)
        elif kind == "message":
            for handler in list(self._handlers.get((False, channel), ())):
                try:
                    handler(message["data"])
                except Exception:  # a listener's bug must not stop the others
                    log.exception("pub/sub handler failed")
        elif kind == "pmessage":
            for handler in list(self._handlers.get((True, message["pattern"]), ())):
                try:
                    handler(channel, message["data"])
                except Exception:
                    log.exception("pub/sub handler failed")

    def _confirm_reply(self, pattern: bool, channel: bytes) -> None:
        confirmed = self._confirmed.get((pattern, channel))
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)
        if self._broken:  # redis-py subscribed again on the new connection
            self._broken = False
            for listener in list(self._gap_listeners):
                try:
                    listener()
                except Exception:
                    log.exception("pub/sub gap listener failed")

    def _unsubscribed(self, channel: bytes) -> None:
        if (False, channel) in self._handlers and self._on_lost is not None:
            self._on_lost()  # Redis dropped a channel someone hears: its slot moved

    async def close(self) -> None:
        self._closed = True
        for task in (self._reader, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._reader = self._sweeper = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis-py 8.2
            self._pubsub = None
        self._handlers.clear()
        # Listeners still waiting for a confirmation hear that none will come.
        self._connection_lost(HubClosed("the pub/sub hub was closed"))
        self._idle.clear()
        self._gap_listeners.clear()


async def _disconnect(pubsub: PubSub) -> None:
    connection: Any = pubsub.connection  # typed None by redis-py
    if connection is not None:
        await connection.disconnect()


T = TypeVar("T")


class Inbox(AsyncGenerator[T, None]):
    """Messages a hub handler puts in a bounded inbox, read as an async generator.

    ``aclose()`` unsubscribes whether or not iteration ever started (a plain async
    generator never started skips its ``finally``, and its channel would stay
    subscribed). A consumer far behind loses messages rather than memory.
    """

    def __init__(self, maxsize: int = 10_000) -> None:
        self._inbox: asyncio.Queue[T] = asyncio.Queue(maxsize=maxsize)
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False

    def put(self, item: T) -> bool:
        """Queue ``item``; False (dropped) when the inbox is full."""
        try:
            self._inbox.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    async def asend(self, value: None) -> T:
        if self._closed:
            raise StopAsyncIteration
        return await self._inbox.get()

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> T:
        await self.aclose()
        raise typ if val is None else val

    async def aclose(self) -> None:
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


class EventStream(Inbox[tuple[str, str]]):
    """A queue's events, ``(event, job_id)``, from the moment of subscribing."""

    def on_message(self, data: bytes) -> None:
        """The hub handler: ``"<event> <id> [<id> ...]"``."""
        event, *job_ids = data.decode().split(" ")
        for job_id in job_ids:
            if not self.put((event, job_id)):
                return

    async def open(self, hub: Subscriber, channel: str) -> EventStream:
        self._unsubscribe = await hub.subscribe(channel, self.on_message)
        return self
