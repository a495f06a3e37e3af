"""Clients of a Redis behind Sentinel (URLs: ``sentinel_url.py``).

The clients are redis-py's (:mod:`redis.asyncio.sentinel`): a connection asks the
sentinels for the primary when it connects, so after a failover the next connection
reaches the new primary; one that finds a demoted primary (``READONLY``) is dropped
(redis-py's SentinelManagedConnection, and :class:`~corral.backends.redis.mux.Link`
for Corral's own links). When no sentinel answers at all, a connection goes to the
last primary they named: a pause of the sentinels leaves a working primary usable.
"""

from __future__ import annotations

import logging
from typing import Any

from corral.backends.redis.connection import MAX_BLOCK, POOL_SIZE, POOL_WAIT
from corral.backends.redis.mux import MuxRedis
from corral.backends.redis.sentinel_url import SentinelURL, address, parse_sentinel_url
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["open_sentinel_clients"]

log = logging.getLogger("corral.redis")


class _Sentinels(Sentinel):
    """redis-py's Sentinel, with messages that name the sentinels, and the last primary
    they named kept for when none of them answers."""

    def __init__(self, config: SentinelURL, **kwargs: Any) -> None:
        super().__init__(config.sentinels, **kwargs)
        self.config = config
        self.last_primary: tuple[str, int] | None = None

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
    """redis-py's Sentinel pool, closing its sentinels' connections with its own."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # closing, not dropping idle connections
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
    once = Retry(NoBackoff(), 0)
    # One Sentinel per client: each pool closes its own sentinels' connections.
    client: Redis = _sentinels(config, once).master_for(
        config.service,
        redis_class=MuxRedis,
        connection_pool_class=_BlockingSentinelPool,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        socket_timeout=10,
    )
    blocking: Redis = _sentinels(config, once).master_for(
        config.service, connection_pool_class=_SentinelPool, socket_timeout=MAX_BLOCK + 10
    )
    return client, blocking
