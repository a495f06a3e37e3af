"""Redis Cluster: ``redis+cluster://`` URLs and a cluster client with the fast path.

redis-py's :class:`~redis.asyncio.cluster.RedisCluster` knows the topology (the slot
map, refreshed on ``MOVED`` and after a failover), and runs pipelines, pub/sub and
admin commands. On its own it costs the hot path a third more client CPU per job:
each command takes a pooled connection of its node (and before redis-py 8.2 every
``FCALL`` first asked the server which arguments are keys, ``COMMAND GETKEYS``: 1.7x
the time per job; see ``bench/shards.py``). :class:`MuxCluster` keeps its
topology but sends each command whose key it can read (scripts, and the single-key
commands the backend uses) down the owning node's :class:`~.mux.MuxRedis`: one
pipelined connection per primary, as on a single Redis. A redirection (``MOVED``,
``ASK``, ``TRYAGAIN``, ``CLUSTERDOWN``: Redis ran nothing) goes back through
redis-py, which follows it and refreshes the slot map. A lost node connection asks
for a refresh, so the call that the backend tries again finds the promoted replica.

Every key of one queue shares the queue's hash tag, so each script touches one slot;
the registry keys have tags of their own (``{workers}``, ``{audit}``, ``{notify}``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from corral.backends.redis.mux import MuxRedis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "CLUSTER_SCHEMES",
    "REDIRECTED",
    "ClusterUnavailable",
    "MuxCluster",
    "NodeOptions",
    "is_cluster_url",
    "open_cluster",
    "parse_cluster_url",
    "stopped_by_migration",
]

T = TypeVar("T")

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
_REFRESH_PAUSE = 0.25  # seconds between topology refreshes asked for by failures

# Commands whose first argument is their only key: the backend's reads and writes.
# Anything else (multi-key, keyless, admin) takes redis-py's routing.
_SINGLE_KEY = frozenset(
    {
        "GET", "SET", "SETEX", "PSETEX", "GETDEL", "INCR", "INCRBY", "DECR", "STRLEN",
        "EXPIRE", "PEXPIRE", "PEXPIREAT", "TTL", "PTTL", "TYPE", "PERSIST",
        "HGET", "HSET", "HSETNX", "HMGET", "HMSET", "HGETALL", "HDEL", "HEXISTS",
        "HINCRBY", "HLEN", "HKEYS", "HVALS", "HSCAN", "HSTRLEN",
        "LPUSH", "RPUSH", "LPOP", "RPOP", "LRANGE", "LLEN", "LINDEX", "LREM", "LTRIM",
        "SADD", "SREM", "SMEMBERS", "SCARD", "SISMEMBER", "SMISMEMBER", "SSCAN",
        "ZADD", "ZREM", "ZCARD", "ZSCORE", "ZMSCORE", "ZCOUNT", "ZRANK", "ZREVRANK",
        "ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZINCRBY", "ZSCAN",
        "ZREMRANGEBYSCORE", "ZREMRANGEBYRANK", "ZPOPMIN", "ZPOPMAX",
        "XADD", "XRANGE", "XREVRANGE", "XLEN", "XTRIM", "XDEL",
    }
)  # fmt: skip
_SCRIPTS = frozenset({"FCALL", "FCALL_RO", "EVALSHA", "EVALSHA_RO", "EVAL", "EVAL_RO"})
#: Replies that say Redis ran nothing and redis-py knows where to go instead.
REDIRECTED = (AskError, TryAgainError, ClusterDownError)


#: What Redis answers when a script meets a key of a slot being migrated that is not on
#: this node (moved already, or a new one).
_NON_LOCAL = "Script attempted to access a non local key"


def stopped_by_migration(error: BaseException) -> bool:
    """Whether ``error`` is a script that Redis stopped at a key of a slot being
    migrated. Scripts are not rolled back, so on a cluster each reads every key it may
    write before its first write (see ``CLUSTER`` in ``lua/includes/common.lua``): a
    stopped one changed nothing and is tried again until the move ends."""
    return isinstance(error, ResponseError) and _NON_LOCAL in str(error)


class ClusterUnavailable(RedisConnectionError):
    """The cluster answered that it cannot serve the slot now (failover under way):
    nothing ran, so the backend tries again like after a lost connection."""


def as_cluster(client: object) -> MuxCluster | None:
    """``client`` if it is a cluster's (the backend holds it typed as a ``Redis``)."""
    return client if isinstance(client, MuxCluster) else None


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``)."""
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes and the connection options of a ``redis+cluster://`` URL:
    ``redis+cluster://[user:password@]host:port[,host:port...][/0][?option=value]``.
    ``rediss+cluster`` connects with TLS; the options are redis-py's TLS settings
    (``ssl_ca_certs``, ``ssl_cert_reqs``, ``ssl_certfile``, ``ssl_keyfile``,
    ``ssl_check_hostname``) and ``client_name``. Raises ValueError naming the fault."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in CLUSTER_SCHEMES:
        raise ValueError("a cluster URL starts with redis+cluster:// or rediss+cluster://")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    seeds: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"cluster node {item!r} is not host:port")
        seeds.append((host, int(port)))
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError(f"Redis Cluster has only database 0, not {parts.path.strip('/')!r}")
    options: dict[str, Any] = {}
    if userinfo:
        user, colon, password = userinfo.partition(":")
        if colon:
            options["username"] = unquote(user) or None
            options["password"] = unquote(password)
        else:
            options["password"] = unquote(user)
    allowed = {"ssl_ca_certs", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile"}
    allowed |= {"ssl_check_hostname", "client_name"}
    for name, values in parse_qs(parts.query, keep_blank_values=True).items():
        if name not in allowed:
            raise ValueError(f"unknown cluster URL option {name!r} (known: {sorted(allowed)})")
        value: Any = values[-1]
        if name == "ssl_check_hostname":
            value = value.lower() in ("1", "true", "yes")
        options[name] = value
    if scheme == "rediss+cluster":
        options["ssl"] = True
    elif any(name.startswith("ssl_") for name in options):
        raise ValueError("TLS options need rediss+cluster://")
    return seeds, options


def _routing_key(args: tuple[Any, ...]) -> Any:
    """The key that decides where a command goes, or None when redis-py must decide."""
    name = args[0]
    if isinstance(name, bytes):
        name = name.decode()
    name = str(name).upper()
    if name in _SCRIPTS:
        if len(args) > 3 and int(args[2]) > 0:
            return args[3]
        return None
    if name in _SINGLE_KEY and len(args) > 1:
        return args[1]
    return None


class MuxCluster(RedisCluster):
    """A :class:`RedisCluster` whose keyed commands share one pipelined connection per
    primary (see the module doc). ``node_options`` are the per-node client options."""

    def __init__(self, *args: Any, node_options: NodeOptions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._node_options = node_options
        self._muxes: dict[tuple[str, int, bool], Redis] = {}
        self._refreshing: asyncio.Task[None] | None = None
        self._refreshed_at = -1e9

    def node_client(self, key: str, *, blocking: bool = False) -> Redis:
        """A client of the primary owning ``key``'s slot: the pipelined one, or with
        ``blocking`` one for blocking waits (a socket timeout above the longest wait).
        The topology must be known (any command or :meth:`initialize` first)."""
        node = self.get_node_from_key(key)
        if node is None:  # pragma: no cover - redis-py raises for an uncovered slot
            raise ClusterUnavailable(f"no node serves the slot of {key!r}")
        return self._client_of(node.host, int(node.port), blocking)

    def primary_clients(self) -> list[Redis]:
        """A client of each primary, for server checks and loading scripts."""
        return [self._client_of(n.host, int(n.port), False) for n in self.get_primaries()]

    def _client_of(self, host: str, port: int, blocking: bool) -> Redis:
        client = self._muxes.get((host, port, blocking))
        if client is None:
            client = self._node_options.client(host, port, blocking)
            self._muxes[(host, port, blocking)] = client
        return client

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        key = None if kwargs.get("target_nodes") else _routing_key(args)
        if key is None:
            return await super().execute_command(*args, **kwargs)  # type: ignore[no-untyped-call, unused-ignore]
        if not self.nodes_manager.slots_cache:
            await self.nodes_manager.initialize()
        try:
            try:
                return await self.node_client(key).execute_command(*args, **kwargs)  # type: ignore[no-untyped-call]
            except REDIRECTED:
                # Not run: redis-py follows the redirection and updates its slot map.
                self.refresh_soon()
                try:
                    return await super().execute_command(*args, **kwargs)
                except (TryAgainError, ClusterError) as exc:
                    # ClusterError is also redis-py giving up after 16 redirections
                    # ("TTL exhausted."): while a slot migrates, a script whose keys are
                    # not all on one side is answered ASK, then TRYAGAIN, until the move
                    # ends. Nothing ran, so the backend tries again as after a failover.
                    raise ClusterUnavailable(str(exc)) from exc
        except ResponseError as exc:
            if not stopped_by_migration(exc):
                raise
            self.refresh_soon()
            raise ClusterUnavailable(str(exc)) from exc
        except (RedisConnectionError, RedisTimeoutError):
            # The node may be gone for good: learn who owns its slots now, so that
            # the call the backend tries again goes to the promoted replica.
            self.refresh_soon()
            raise

    async def on_node(self, key: str, do: Callable[[Redis], Awaitable[T]]) -> T:
        """``await do(client)`` with the pipelined client of ``key``'s primary, for what
        must run on one connection (a script and its ``WAIT``). Failures are those of
        :meth:`execute_command`: a lost node or a moved slot asks for a fresh slot map,
        and a redirection raises :class:`ClusterUnavailable`, so that the call the
        backend tries again goes where the slot is now."""
        if not self.nodes_manager.slots_cache:
            await self.nodes_manager.initialize()
        try:
            return await do(self.node_client(key))
        except ResponseError as exc:
            if not self.moved(exc):
                raise
            raise ClusterUnavailable(str(exc)) from exc
        except (RedisConnectionError, RedisTimeoutError):
            self.refresh_soon()
            raise

    def moved(self, error: BaseException) -> bool:
        """Whether a reply says the slot is elsewhere now or moving (a redirection, or
        a script stopped at a moved key); if so, a fresh slot map is on its way."""
        if isinstance(error, REDIRECTED) or stopped_by_migration(error):
            self.refresh_soon()
            return True
        return False

    def refresh_soon(self) -> None:
        """Refresh the slot map in the background (at most every 0.25 s)."""
        loop = asyncio.get_running_loop()
        if self._refreshing is not None and not self._refreshing.done():
            return
        if loop.time() - self._refreshed_at < _REFRESH_PAUSE:
            return
        self._refreshed_at = loop.time()
        self._refreshing = asyncio.ensure_future(self._refresh())

    async def _refresh(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.nodes_manager.initialize()

    async def drop_idle(self) -> None:
        """Drop every node's idle pooled connections (after an outage)."""
        for client in self._muxes.values():
            with contextlib.suppress(RedisError, OSError):
                await client.connection_pool.disconnect(inuse_connections=False)
        self.refresh_soon()

    async def aclose(self, *args: Any, **kwargs: Any) -> None:
        """Close the node clients and the cluster client."""
        if self._refreshing is not None:
            self._refreshing.cancel()
        for client in self._muxes.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self._muxes.clear()
        await super().aclose()


@dataclass(frozen=True)
class NodeOptions:
    """How to connect to one node, as :func:`~.connection.open_clients` does."""

    common: dict[str, Any]
    tls: bool
    pool_size: int
    pool_wait: float
    blocking_socket_timeout: float

    def client(self, host: str, port: int, blocking: bool) -> Redis:
        # No retries: the backend tries calls again itself (connection.py); redis-py's
        # own would run a command twice.
        once = Retry(NoBackoff(), 0)
        if blocking:
            options = {**self.common, "socket_timeout": self.blocking_socket_timeout}
            return Redis(host=host, port=port, ssl=self.tls, retry=once, **options)
        pool = BlockingConnectionPool(
            host=host,
            port=port,
            connection_class=SSLConnection if self.tls else Connection,
            max_connections=self.pool_size,
            timeout=self.pool_wait,
            retry=once,
            **self.common,
        )
        return MuxRedis.from_pool(pool)


def open_cluster(
    url: str,
    *,
    socket_timeout: float,
    blocking_socket_timeout: float,
    pool_size: int,
    pool_wait: float,
) -> MuxCluster:
    """The cluster client for ``url`` (see :func:`parse_cluster_url`). Raises ValueError."""
    seeds, options = parse_cluster_url(url)
    tls = bool(options.pop("ssl", False))
    common: dict[str, Any] = {
        "socket_keepalive": True,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 5,
        **options,
    }
    nodes = NodeOptions(common, tls, pool_size, pool_wait, blocking_socket_timeout)
    return MuxCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in seeds],
        node_options=nodes,
        retry=Retry(NoBackoff(), 0),
        max_connections=pool_size,
        ssl=tls,
        **common,
    )
