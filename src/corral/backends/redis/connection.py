"""The Redis backend's clients, and riding out a lost connection.

The clients never send a command twice by themselves (redis-py's retry is off, and
:class:`~corral.backends.redis.mux.MuxRedis` re-sends only what Redis never saw): a
command whose reply was lost may have run, and only the backend knows whether running
it again is safe. The backend sends every call through :meth:`Reconnect.call`, which
tries again with backoff (redis-py's :class:`~redis.asyncio.retry.Retry`) until
``reconnect_timeout`` seconds have passed, so a Redis restart shorter than that costs
callers latency, not errors. Calls are made safe to repeat where they are not by nature:
an enqueue recognises the jobs its own earlier attempt stored, and a claim is never
sent twice, its lost reply recovered from the jobs leased to its token (``recover.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from corral.backends.redis.cluster import is_cluster_url, open_cluster
from corral.backends.redis.mux import MuxRedis
from corral.backends.redis.records import text
from corral.backends.redis.sentinel_url import is_sentinel_url
from corral.errors import ConfigurationError
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "MAX_BLOCK",
    "MIN_REDIS_VERSION",
    "Reconnect",
    "check_server",
    "durable_shortfall",
    "open_clients",
]

log = logging.getLogger("corral.redis")

T = TypeVar("T")

MAX_BLOCK = 30.0  # seconds; longest blocking wait (the socket timeout is above it)
MIN_REDIS_VERSION = (6, 2, 0)
POOL_SIZE = 100  # pooled connections of the backend's client (redis-py's default)
POOL_WAIT = 10.0  # seconds a command waits for a free one before ConnectionFailed
_WAITAOF = ("WAITAOF", 1, 0, 5000)  # this connection's writes fsynced locally, within 5 s
_WAIT_REPLICA = ("WAIT", 1, 5000)  # ... and received by a replica, within 5 s


def open_clients(url: str) -> tuple[Redis, Redis]:
    """The backend's two clients for ``url``: the shared pipelined one, and one for
    blocking waits (for a cluster, one :class:`~.cluster.MuxCluster` does both: it
    gives each node's). Raises ValueError for a bad URL."""
    if is_cluster_url(url):
        cluster = open_cluster(
            url,
            socket_timeout=10,
            blocking_socket_timeout=MAX_BLOCK + 10,
            pool_size=POOL_SIZE,
            pool_wait=POOL_WAIT,
        )
        # Typed as a Redis: it answers the same commands (see cluster.py).
        return cast(Redis, cluster), cast(Redis, cluster)
    if is_sentinel_url(url):
        from corral.backends.redis.sentinel import open_sentinel_clients

        return open_sentinel_clients(url)
    # Explicit timeouts: a vanished peer is noticed; the blocking connection waits
    # longer than any blocking command it sends. No retries here (see the module doc).
    once = Retry(NoBackoff(), 0)
    # A blocking pool: past its size, a command that needs a pooled connection (a
    # pipelined read, pub/sub, WAIT) waits for one. redis-py's default pool refuses at
    # once ("Too many connections"), which under many concurrent reads turned stored
    # enqueues into 503s (their re-read found it full).
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        socket_keepalive=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        retry=once,
    )
    client: Redis = MuxRedis.from_pool(pool)
    blocking: Redis = Redis.from_url(
        url,
        socket_keepalive=True,
        socket_timeout=MAX_BLOCK + 10,
        socket_connect_timeout=5,
        retry=once,
    )
    return client, blocking


async def check_server(
    client: Redis,
    info: dict[str, Any],
    safe_url: str,
    *,
    durable: bool,
    replicated: bool = False,
) -> tuple[tuple[int, ...], tuple[tuple[Any, ...], ...]]:
    """Check the server a backend connects to (``info``: its INFO server section):
    version, eviction policy (a warning), and for ``durable`` its persistence. Returns
    the version and the commands to send after each durable enqueue, on its connection
    (see :func:`durable_shortfall`); ``replicated``: a replica may be promoted (a
    cluster's primary). Raises ConfigurationError."""
    version = tuple(int(p) for p in str(info.get("redis_version", "0.0.0")).split(".")[:3])
    if version < MIN_REDIS_VERSION:
        need = ".".join(map(str, MIN_REDIS_VERSION))
        raise ConfigurationError(
            f"Redis at {safe_url} is version {info.get('redis_version')}; "
            f"Corral needs {need} or newer"
        )
    config = await _config(client, "maxmemory-policy", "appendonly", "appendfsync")
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        log.warning(
            "Redis at %s has maxmemory-policy=%s: under memory pressure it will DELETE "
            "job data (lost jobs). Set maxmemory-policy noeviction for queues.",
            safe_url,
            policy,
        )
    if not durable:
        return version, ()
    if config.get("appendonly") != "yes":
        raise ConfigurationError(
            f"durable enqueue needs the AOF on Redis at {safe_url}: set appendonly yes"
        )
    # Behind Sentinel or in a cluster a failover promotes a replica: the enqueue must
    # be on one too.
    replicated = replicated or isinstance(client.connection_pool, SentinelConnectionPool)
    waits = (_WAIT_REPLICA,) if replicated else ()
    if version >= (7, 2, 0):
        return version, (_WAITAOF, *waits)
    if config.get("appendfsync") != "always":
        raise ConfigurationError(
            f"durable enqueue on Redis < 7.2 (no WAITAOF) needs appendfsync always on {safe_url}"
        )
    return version, waits


def durable_shortfall(command: tuple[Any, ...], reply: Any) -> str | None:
    """What a durable wait's ``reply`` says was not done (None: all was)."""
    if command[0] == "WAITAOF" and int(reply[0]) < int(command[1]):
        return f"did not fsync the enqueue in {int(command[-1]) / 1000:g} s"
    if command[0] == "WAIT" and int(reply) < int(command[1]):
        return f"had no replica acknowledge the enqueue in {int(command[-1]) / 1000:g} s"
    return None


async def _config(client: Redis, *names: str) -> dict[str, str]:
    # Managed Redis often disables CONFIG: then assume defaults rather than fail.
    values: dict[str, str] = {}
    for name in names:
        try:
            reply = await client.config_get(name)
        except RedisError:
            continue
        for key, value in reply.items():
            values[text(key)] = text(value)
    return values


class Reconnect:
    """Calls to one Redis, tried again while the connection is down, for at most
    ``timeout`` seconds per call; and the state of that connection, shared by every
    user of the backend (its calls, the pub/sub hub, a worker's loops), so that one
    WARNING says the connection was lost and one INFO that it is back, however many
    calls fail and however long the outage lasts. ``drop_idle`` drops the idle pooled
    connections, which died with the server, so that no call finds one after it is back
    (and reports a second outage): it runs when an outage begins, and again when it
    ends, for the connections busy at its start that came back to the pool since."""

    def __init__(
        self, safe_url: str, timeout: float, drop_idle: Callable[[], Awaitable[None]]
    ) -> None:
        self.safe_url = safe_url
        self.timeout = timeout
        self._drop_idle = drop_idle
        # Jittered, so clients reconnecting after a restart do not arrive in step.
        self._retry = Retry(
            EqualJitterBackoff(cap=0.5, base=0.05), -1, (RedisConnectionError, RedisTimeoutError)
        )
        self._down_since: float | None = None
        self._back_at = -math.inf

    @property
    def down(self) -> bool:
        """True from the first failure of an outage until a call gets through again."""
        return self._down_since is not None

    async def lost(self, error: BaseException, attempt_at: float) -> None:
        """Note that an attempt begun at ``attempt_at`` (loop time) failed for want of
        the connection. Begins an outage (logged) unless one is already under way, or
        the attempt began before the last one ended (its failure is old news)."""
        if self._down_since is not None or attempt_at < self._back_at:
            return
        self._down_since = asyncio.get_running_loop().time()
        log.warning(
            "lost the connection to Redis at %s (%s); trying again for up to %g s",
            self.safe_url,
            error,
            self.timeout,
        )
        await self._drop_idle()

    async def back(self, attempt_at: float) -> None:
        """Note that an attempt begun at ``attempt_at`` got through: that ends the
        outage (logged) if the attempt began after the outage did."""
        if self._down_since is None or attempt_at < self._down_since:
            return
        now = asyncio.get_running_loop().time()
        log.info(
            "the connection to Redis at %s is back (down %.1f s)",
            self.safe_url,
            now - self._down_since,
        )
        self._down_since = None
        self._back_at = now
        await self._drop_idle()

    async def call(self, do: Callable[[], Awaitable[T]]) -> T:
        """``await do()``, again after each connection error or timeout until
        ``timeout`` seconds have passed since the first failure (then that error
        propagates). ``do`` must be safe to repeat."""
        task = asyncio.current_task()
        asked = 0 if task is None else task.cancelling()
        if self._down_since is None:
            # The usual case costs one await: the retry machinery starts at a failure.
            attempt_at = asyncio.get_running_loop().time()
            try:
                result = await do()
            except (RedisConnectionError, RedisTimeoutError) as error:
                result = await self._retrying(do, error, attempt_at)
        else:
            result = await self._retrying(do, None, 0.0)
        if task is not None and task.cancelling() > asked:
            # redis-py can lose a cancel: on Python 3.11 its asyncio.wait_for around a
            # write returns the write's result when the cancel arrives as it finishes.
            # The task cancelled to stop would carry on, and whoever awaits it (a
            # worker's or a hub's stop) would wait for ever.
            raise asyncio.CancelledError
        return result

    async def _retrying(
        self, do: Callable[[], Awaitable[T]], error: Exception | None, attempt_at: float
    ) -> T:
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def attempt() -> T:
            nonlocal attempt_at
            attempt_at = loop.time()
            return await do()

        async def failed(error: Exception) -> None:
            await self.lost(error, attempt_at)
            if loop.time() - started >= self.timeout:
                raise error

        if error is not None:
            await failed(error)
        result = await self._retry.call_with_retry(attempt, failed)
        await self.back(attempt_at)
        return result
