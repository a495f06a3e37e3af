"""Clients of a Redis behind Sentinel (URLs: ``sentinel_url.py``).

The clients are redis-py's (:mod:`redis.asyncio.sentinel`): a connection asks the
sentinels for the primary when it connects, so after a failover the next connection
reaches the new primary; one that finds a demoted primary (``READONLY``) is dropped
(redis-py's SentinelManagedConnection, and :class:`~corral.backends.redis.mux.Link`
for Corral's own links). When no sentinel answers at all, a connection goes to the
last primary they named: a pause of the sentinels leaves a working primary usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from corral.backends.redis.connection import MAX_BLOCK, POOL_SIZE, POOL_WAIT
from corral.backends.redis.mux import MuxRedis
from corral.backends.redis.pubsub import PING_AFTER, PONG_TIMEOUT
from corral.backends.redis.sentinel_url import SentinelURL, address, parse_sentinel_url
from corral.backends.redis.wait import retrieved
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["SWITCH_CHANNEL", "SwitchWatch", "open_sentinel_clients"]

log = logging.getLogger("corral.redis")

SWITCH_CHANNEL = "+switch-master"
_PAUSE = 0.5  # seconds between sentinels when one fails


class _Sentinels(Sentinel):
    """redis-py's Sentinel, with messages that name the sentinels, and the last primary
    they named kept for when none of them answers."""

    def __init__(self, config: SentinelURL, **kwargs: Any) -> None:
        super().__init__(config.sentinels, **kwargs)
        self.config = config
        self.last_primary: tuple[str, int] | None = None

    async def aclose(self) -> None:
        """Close each sentinel's client (redis-py has ``Sentinel.aclose`` from 8.1)."""
        await asyncio.gather(*(sentinel.aclose() for sentinel in self.sentinels))

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        errors: list[str] = []
        answered = False
        # Asked in turn; the first that names a primary it considers up is asked first
        # next time (redis-py's order).
        for number, sentinel in enumerate(self.sentinels):
            kwargs = sentinel.connection_pool.connection_kwargs
            where = address(kwargs["host"], kwargs["port"])
            try:
                masters: Any = await sentinel.sentinel_masters()
            except (RedisConnectionError, RedisTimeoutError, ResponseError, OSError) as exc:
                errors.append(f"{where}: {exc or type(exc).__name__}")
                continue
            answered = True
            state = masters.get(service_name)
            if state is None:
                errors.append(f"{where}: does not monitor {service_name!r}")
            elif not self.check_master_state(state, service_name):
                errors.append(f"{where}: the primary {state['ip']}:{state['port']} is down")
            else:
                self.sentinels[0], self.sentinels[number] = sentinel, self.sentinels[0]
                self.last_primary = (state["ip"], int(state["port"]))
                return self.last_primary
        if not answered and self.last_primary is not None:
            # Sentinels down or partitioned away, the primary perhaps not: a demoted
            # one refuses writes (READONLY), which drops the connection again.
            log.warning(
                "no sentinel of service %r answers (%s); connecting to the last primary "
                "they named, %s",
                service_name,
                "; ".join(errors),
                address(*self.last_primary),
            )
            return self.last_primary
        raise MasterNotFoundError(
            f"no primary for service {service_name!r} from the sentinels "
            f"{self.config.addresses} ({'; '.join(errors)})"
        )


class _SentinelPool(SentinelConnectionPool):
    """redis-py's Sentinel pool that reuses no connection to a former primary, and
    closes its sentinels' connections with its own."""

    async def release(self, connection: Any) -> None:
        # In use when the primary moved (see SwitchWatch): not to be used again.
        if self.master_address is not None and (
            connection.host,
            connection.port,
        ) != tuple(self.master_address):
            await connection.disconnect()
        await super().release(connection)

    async def moved(self, address: tuple[str, int]) -> None:
        """The primary is now ``address``: drop the idle connections to the old one."""
        self.master_address = address
        await self.disconnect(inuse_connections=False)

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            await self.sentinel_manager.aclose()

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:
            # A client's close: redis-py 8.0 closes the pool with disconnect(), not
            # aclose(), so the sentinels' connections are closed here too (closing
            # twice is harmless; drop_idle() and moved() keep them).
            await self.sentinel_manager.aclose()


class _BlockingSentinelPool(_SentinelPool, BlockingConnectionPool):
    """The shared client's pool: past its size, a command waits for a free connection
    (see ``open_clients``)."""


def _sentinels(config: SentinelURL, once: Retry) -> _Sentinels:
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": config.sentinel_timeout,
        "socket_connect_timeout": config.sentinel_timeout,
        "socket_keepalive": True,
        "username": config.sentinel_username,
        "password": config.sentinel_password,
        "retry": once,
    }
    if config.tls:
        sentinel_kwargs.update(ssl=True, **config.tls_options)
    node_kwargs: dict[str, Any] = {
        "db": config.db,
        "username": config.username,
        "password": config.password,
        "socket_keepalive": True,
        "socket_connect_timeout": 5,
        "retry": once,
    }
    if config.tls:
        node_kwargs.update(ssl=True, **config.tls_options)
    return _Sentinels(config, sentinel_kwargs=sentinel_kwargs, **node_kwargs)


def open_sentinel_clients(url: str) -> tuple[Redis, Redis]:
    """``open_clients`` for a Sentinel URL: the shared pipelined client and the
    blocking one, each on a pool of the current primary. Raises ValueError."""
    config = parse_sentinel_url(url)
    # One Sentinel for both: the last primary it named serves either client when no
    # sentinel answers. Each pool closes it (a second close is harmless).
    sentinels = _sentinels(config, Retry(NoBackoff(), 0))
    client: Redis = sentinels.master_for(
        config.service,
        redis_class=MuxRedis,
        connection_pool_class=_BlockingSentinelPool,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        socket_timeout=10,
    )
    blocking: Redis = sentinels.master_for(
        config.service, connection_pool_class=_SentinelPool, socket_timeout=MAX_BLOCK + 10
    )
    return client, blocking


_CLOSE_WAIT = 3.0  # seconds close() waits for the watch to end


class SwitchWatch:
    """The sentinels' ``+switch-master`` announcements for the clients' service.

    A failover promotes a replica at once, but Sentinel demotes a primary that is
    still running (``SENTINEL FAILOVER``, a partition that heals) only some seconds
    later: meanwhile connections to it work, its writes are lost when it resyncs, and
    a worker blocked there hears of no new job. On an announcement the pools drop their
    connections to the old primary and ``on_switch(new primary)`` drops the caller's
    own (the shared link, blocking waits, pub/sub). One sentinel is listened to at a time; a
    lost or silent one is replaced by the next.
    """

    def __init__(
        self,
        client: Redis,
        blocking: Redis,
        on_switch: Callable[[tuple[str, int]], Awaitable[None]],
    ) -> None:
        pool: Any = client.connection_pool
        self._pools: list[Any] = [pool, blocking.connection_pool]
        self._sentinels: _Sentinels = pool.sentinel_manager
        self._service = pool.service_name
        self._on_switch = on_switch
        self._closing = False
        self._pubsub: PubSub | None = None
        self._task = asyncio.create_task(self._run(), name="corral-sentinel-switch")
        self._task.add_done_callback(retrieved)

    async def close(self) -> None:
        # redis-py's read can swallow a cancellation (Python 3.11): the flag ends the
        # watch at its next one-second read instead, and close never waits longer.
        self._closing = True
        self._task.cancel()
        await asyncio.wait([self._task], timeout=_CLOSE_WAIT)
        if not self._task.done() and (pubsub := self._pubsub) is not None:
            # Still reading (a busy loop): its connection must not outlive the loop.
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]

    async def _run(self) -> None:
        turn = 0
        while not self._closing:
            sentinels = self._sentinels.sentinels
            pubsub = self._pubsub = sentinels[turn % len(sentinels)].pubsub()
            turn += 1
            try:
                await pubsub.subscribe(SWITCH_CHANNEL)
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the watch must outlive any trouble
                log.debug("sentinel +switch-master subscription failed (%s)", exc)
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
            await asyncio.sleep(_PAUSE)

    async def _listen(self, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        heard_at, pinged = loop.time(), False
        while not self._closing:
            message = await pubsub.get_message(timeout=1.0)
            now = loop.time()
            if message is None:
                # Silent for long: PING; no reply either: next sentinel.
                if now - heard_at >= PING_AFTER + PONG_TIMEOUT:
                    raise RedisTimeoutError("the sentinel does not answer")
                if now - heard_at >= PING_AFTER and not pinged:
                    pinged = True
                    await pubsub.ping()
                continue
            heard_at, pinged = now, False
            if message["type"] == "message":
                await self._announced(message["data"])

    async def _announced(self, data: bytes) -> None:
        # "<service> <old ip> <old port> <new ip> <new port>"
        words = data.decode(errors="replace").split()
        if len(words) != 5 or words[0] != self._service or not words[4].isdigit():
            return
        new = (words[3], int(words[4]))
        log.warning(
            "Sentinel moved the primary of service %r from %s to %s; reconnecting",
            self._service,
            address(words[1], int(words[2]) if words[2].isdigit() else 0),
            address(*new),
        )
        self._sentinels.last_primary = new
        for pool in self._pools:
            with contextlib.suppress(RedisError, OSError):
                await pool.moved(new)
        await self._on_switch(new)
