"""The Redis implementation of :class:`corral.backends.base.Backend`.

Every transition is one Lua script in ``lua/`` (see the header of each for its
KEYS, ARGV and return values); this module only packs arguments, runs scripts and
decodes replies. Driver errors are translated to :mod:`corral.errors` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

from corral.backends.base import (
    KEEP_ALL,
    ClaimedJob,
    Completion,
    Enqueued,
    JobState,
    NewJob,
    Retention,
    bounded_wait,
    wait_then_claim,
)
from corral.backends.redis.audit import RedisAudit
from corral.backends.redis.cluster import (
    ClusterUnavailable,
    MuxCluster,
    as_cluster,
    is_cluster_url,
)
from corral.backends.redis.connection import (
    MAX_BLOCK,
    MIN_REDIS_VERSION,
    Reconnect,
    check_server,
    durable_shortfall,
    open_clients,
)
from corral.backends.redis.facts import RedisFacts
from corral.backends.redis.flows import RedisFlows
from corral.backends.redis.history import RedisHistory
from corral.backends.redis.keys import QueueKeys, RegistryKeys
from corral.backends.redis.mux import Link, MuxRedis, pack
from corral.backends.redis.outbox import RedisOutbox
from corral.backends.redis.paging import RedisPaging
from corral.backends.redis.pubsub import EventStream, Hub, Subscriber
from corral.backends.redis.reads import RedisReads
from corral.backends.redis.records import job_rows
from corral.backends.redis.records import text as _text
from corral.backends.redis.recover import adopt
from corral.backends.redis.scripts import ScriptSet
from corral.backends.redis.sentinel import SwitchWatch
from corral.backends.redis.sentinel_url import is_sentinel_url, parse_sentinel_url
from corral.backends.redis.sharded import ShardedHub
from corral.backends.redis.streams import RedisStreams
from corral.backends.redis.wait import STOP_GIVE_UP, WaitLinks, end_on_stop, retrieved
from corral.backends.redis.waiters import Waiters
from corral.errors import (
    BackendError,
    ConfigurationError,
    ConnectionFailed,
    InvalidTransition,
    JobNotFound,
    StoreFull,
)
from corral.settings import DEFAULT_RECONNECT_TIMEOUT, mask_url
from redis.asyncio import Redis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["MIN_REDIS_VERSION", "RedisBackend"]

log = logging.getLogger("corral.redis")

_ENQUEUE_CHUNK = 1000
_NKEYS = 8  # keys every script takes (_queue_keys)
WAIT_MARGIN = 10.0  # seconds past a blocking wait's timeout before its link is closed

T = TypeVar("T")


def _retention_args(retention: Retention) -> list[int]:
    count = -1 if retention.count is None else retention.count
    age = -1 if retention.max_age is None else int(retention.max_age * 1000)
    return [count, age]


def _db_of(url: str) -> int:
    # A malformed URL is reported by connect(), which parses it again.
    try:
        if is_sentinel_url(url):
            return parse_sentinel_url(url).db
        return int(parse_url(url).get("db", 0))
    except (ValueError, TypeError):
        return 0


class RedisBackend(
    RedisReads,
    RedisFlows,
    RedisOutbox,
    RedisAudit,
    RedisHistory,
    RedisFacts,
    RedisStreams,
    RedisPaging,
):
    """Corral's storage on Redis. ``url`` is any redis-py URL (``redis://``,
    ``rediss://``, ``unix://``), a Sentinel URL (``redis+sentinel://``, see
    ``sentinel_url.py``) or a Cluster URL (``redis+cluster://``); ``prefix`` namespaces
    every key. A call that cannot
    reach Redis tries again for up to ``reconnect_timeout`` seconds before it raises
    ConnectionFailed (see ``connection.py``)."""

    #: Run the scripts as one function library (FCALL) on Redis >= 7; False keeps the
    #: EVALSHA path that Redis 6.2 uses (the conformance suite runs both).
    use_functions = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "corral",
        durable: bool = False,
        reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT,
    ) -> None:
        self.url = url
        self.durable = durable
        #: Sent after each durable enqueue, on its connection (none: appendfsync always
        #: and no replica to wait for).
        self._durable_wait: tuple[tuple[Any, ...], ...] = ()
        self.safe_url = mask_url(url)
        self._reconnect = Reconnect(self.safe_url, reconnect_timeout, self._drop_idle)
        self.prefix = prefix
        #: The database number, in pub/sub channel names (pub/sub is server-wide).
        self.db = _db_of(url)
        self._registry = RegistryKeys.build(prefix)
        #: Redis Cluster: the scripts publish on shard channels (see sharded.py).
        self._cluster_url = is_cluster_url(url)
        self._keys: dict[str, QueueKeys] = {}
        self._known_queues: set[str] = set()
        self._client: Redis | None = None
        self._blocking: Redis | None = None
        self._cluster: MuxCluster | None = None  # the client, when it is a cluster's
        # One set of wait connections per client (a cluster: per node).
        self._waits: dict[int, WaitLinks] = {}
        self._scripts: ScriptSet | None = None
        self._hub: Subscriber | None = None
        self._switch: SwitchWatch | None = None  # Sentinel's failover announcements
        self._waiters: Waiters | None = None

    # -- plumbing -------------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except (RedisError, OSError, RedisClusterException) as exc:
            raise self._translated(exc) from exc

    def _translated(self, exc: Exception) -> Exception:
        """The Corral error a driver error stands for."""
        if isinstance(
            exc, (RedisConnectionError, RedisTimeoutError, OSError, RedisClusterException)
        ):
            # RedisClusterException: no seed node let us in (unreachable, or refused).
            return ConnectionFailed(
                f"cannot reach Redis at {self.safe_url}: {exc} "
                "(is redis-server running, and are host, port and password right?)",
                reported=self._reconnect.down,
            )
        if isinstance(exc, ResponseError):
            # redis-py strips the OOM prefix (OutOfMemoryError); inside a pipeline the
            # refusal is wrapped in a plain ResponseError: match the message too.
            if isinstance(exc, OutOfMemoryError) or "maxmemory" in str(exc):
                return StoreFull(
                    f"Redis at {self.safe_url} is full (maxmemory reached, nothing was "
                    "written): raise maxmemory or let workers drain the queues"
                )
            return BackendError(f"Redis at {self.safe_url} refused a command: {exc}")
        return BackendError(f"Redis error at {self.safe_url}: {exc}")

    async def _call(self, do: Callable[[], Awaitable[T]]) -> T:
        """``await do()`` with driver errors translated, tried again while Redis is
        unreachable (see ``connection.py``): ``do`` must be safe to repeat."""
        # try/except rather than _translate(): this is every call's path, and a
        # generator-based context manager costs more than the rest of it.
        try:
            return await self._reconnect.call(do)
        except (RedisError, OSError, RedisClusterException) as exc:
            raise self._translated(exc) from exc

    async def _pipelined(
        self, add: Callable[[Any], object], transaction: bool = False
    ) -> list[Any]:
        """The replies of the commands ``add(pipe)`` queues, sent as one pipeline
        (retried like :meth:`_call`: only for commands safe to repeat)."""
        client = self._client_or_fail()

        async def run() -> list[Any]:
            async with client.pipeline(transaction=transaction) as pipe:
                add(pipe)
                return await pipe.execute()

        return await self._call(run)

    async def _drop_idle(self) -> None:
        if self._cluster is not None:
            await self._cluster.drop_idle()
            return
        for client in (self._client, self._blocking):
            if client is not None:
                with contextlib.suppress(RedisError, OSError):
                    await client.connection_pool.disconnect(inuse_connections=False)

    def _client_or_fail(self) -> Redis:
        if self._client is None:
            raise ConfigurationError("the backend is not connected (call connect() first)")
        return self._client

    @property
    def redis(self) -> Redis:
        """The backend's own client, for tasks' own Redis work (``JobContext.redis``):
        its ordinary commands share one pipelined connection."""
        return self._client_or_fail()

    def _blocking_for(self, queue: str) -> Redis:
        """The client for blocking waits on ``queue``: in a cluster, its node's."""
        if self._cluster is not None:
            return self._cluster.node_client(self._k(queue).marker, blocking=True)
        if self._blocking is None:
            raise ConfigurationError("the backend is not connected (call connect() first)")
        return self._blocking

    def _scripts_or_fail(self) -> ScriptSet:
        if self._scripts is None:
            raise ConfigurationError("the backend is not connected (call connect() first)")
        return self._scripts

    def _k(self, queue: str) -> QueueKeys:
        keys = self._keys.get(queue)
        if keys is None:
            keys = self._keys[queue] = QueueKeys.build(
                self.prefix, queue, self.db, sharded=self._cluster_url
            )
        return keys

    def _queue_keys(self, keys: QueueKeys) -> list[str]:
        return [
            keys.wait,
            keys.active,
            keys.delayed,
            keys.completed,
            keys.failed,
            keys.cancelled,
            keys.meta,
            keys.marker,
        ]

    async def _run(self, name: str, queue: str, args: list[Any]) -> Any:
        scripts = self._scripts
        assert scripts is not None, "not connected"
        keys = self._k(queue)
        script_keys, script_args = self._queue_keys(keys), [keys.script_base, *args]
        return await self._call(lambda: scripts.run(name, script_keys, script_args))

    async def connect(self) -> None:
        if self._client is not None:
            return
        try:
            client, blocking = open_clients(self.url)
        except ValueError as exc:
            raise ConfigurationError(f"invalid Redis URL {self.safe_url!r}: {exc}") from None
        servers: Callable[[], list[Redis]] = lambda: [client]  # noqa: E731
        try:
            # Not retried: a Redis never reached is more likely a wrong URL than a
            # restart, and says so at once.
            with self._translate():
                if (cluster := as_cluster(client)) is not None:
                    await cluster.initialize()
                    servers = cluster.primary_clients
                versions = []
                for server in servers():
                    info = await server.info("server")
                    version, self._durable_wait = await check_server(
                        server,
                        info,
                        self.safe_url,
                        durable=self.durable,
                        replicated=self._cluster_url,
                    )
                    versions.append(version)
                version = min(versions)
                if self._cluster_url and version < (7, 0, 0):
                    raise ConfigurationError(
                        f"Redis Cluster at {self.safe_url} runs Redis "
                        f"{'.'.join(map(str, version))}; Corral on a cluster needs Redis 7.0 "
                        "or newer (sharded pub/sub)"
                    )
        except BaseException:
            await client.aclose()
            if blocking is not client:
                await blocking.aclose()
            raise
        self._client = client
        self._cluster = as_cluster(client)
        self._blocking = blocking
        v7 = version >= (7, 0, 0)
        self._scripts = ScriptSet(
            client, functions=self.use_functions and v7, flags=v7, servers=servers
        )
        if self._cluster is not None:
            self._hub = ShardedHub(self._cluster, self._reconnect)
        else:
            self._hub = Hub(client, self._reconnect)
        self._waiters = Waiters(self._hub)
        if is_sentinel_url(self.url):
            self._switch = SwitchWatch(client, blocking, self._primary_moved)

    async def _primary_moved(self, primary: tuple[str, int]) -> None:
        """Sentinel named a new ``primary``: leave the old one now, not once it is
        demoted (see ``SwitchWatch``); calls under way are retried on the new one."""
        moved = RedisConnectionError("Sentinel named a new primary")
        if isinstance(self._client, MuxRedis):
            self._client.drop_link(moved, keep=primary)
        for waits in self._waits.values():
            waits.leave(primary, RedisConnectionError(f"{moved} (blocking wait)"))
        if isinstance(self._hub, Hub):
            self._hub.leave(primary, f"{moved} (pub/sub)")

    async def close(self) -> None:
        if self._switch is not None:
            await self._switch.close()
            self._switch = None
        if self._hub is not None:
            await self._hub.close()
        for waits in self._waits.values():
            waits.close()
        self._waits.clear()
        for client in {id(c): c for c in (self._client, self._blocking) if c is not None}.values():
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._client = self._blocking = self._cluster = None
        self._scripts = None
        self._hub = None
        self._waiters = None

    # -- producer -------------------------------------------------------------------

    async def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> Enqueued:
        created = Enqueued()
        fresh = queue not in self._known_queues and await self._follow_new(queue)
        for start in range(0, len(jobs), _ENQUEUE_CHUNK):
            chunk, unlisted, now = await self._enqueue_chunk(
                queue, jobs[start : start + _ENQUEUE_CHUNK]
            )
            created += chunk
            fresh = fresh or unlisted
            # One chunk, one clock reading: the created jobs' created_at.
            created.stored_at_ms = now if start == 0 else None
        if fresh:
            await self._register(queue, fresh)
        return created

    async def _follow_new(self, queue: str) -> bool:
        """Before a first add to ``queue`` from this process: True when it is new here."""
        fresh = queue not in self._known_queues
        if fresh and isinstance(self._hub, ShardedHub):
            # Shard channels have no patterns: all-queue streams must listen first.
            with self._translate():
                await self._hub.follow_queue(queue)
        return fresh

    async def _register(self, queue: str, fresh: bool) -> None:
        """After an add: list a queue new to this process, or forgotten since (see
        overview), in the queue registry."""
        if fresh:
            client = self._client_or_fail()
            await self._call(lambda: client.sadd(self._registry.queues, queue))
            self._known_queues.add(queue)

    async def _enqueue_chunk(
        self, queue: str, jobs: Sequence[NewJob]
    ) -> tuple[list[str | None], bool, int]:
        """Store one chunk; returns (per job: None if created, else the id standing for
        it), whether the queue must be (re-)registered and the Redis clock in ms (see
        enqueue.lua)."""
        scripts = self._scripts
        assert scripts is not None, "not connected"
        keys = self._k(queue)
        # Caller-chosen ids carry this request's nonce, so a repeat of this request
        # knows the jobs it stored itself (see add_job.lua).
        rows = job_rows(jobs, os.urandom(8).hex() if any(j.given_id for j in jobs) else "")
        script_keys, args = self._queue_keys(keys), [keys.script_base, rows]
        attempts = 0

        async def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            if not self._durable_wait:
                return await scripts.run("enqueue", script_keys, args)
            # WAITAOF and WAIT wait for the writes of their own connection: one
            # pipeline, on the node that owns the queue.
            waits = self._durable_wait
            if (cluster := self._cluster) is not None:
                reply, *acks = await cluster.on_node(
                    keys.meta,
                    lambda node: scripts.run_then(
                        "enqueue", script_keys, args, *waits, server=node
                    ),
                )
            else:
                reply, *acks = await scripts.run_then("enqueue", script_keys, args, *waits)
            for command, ack in zip(self._durable_wait, acks, strict=True):
                if shortfall := durable_shortfall(command, ack):
                    raise BackendError(
                        f"Redis at {self.safe_url} {shortfall} (the jobs are stored, "
                        "but may not survive a crash or failover)"
                    )
            return reply

        *flags, unlisted, now = await self._call(attempt)
        # After a lost reply, a random id that exists was stored by this very request.
        return (
            [
                None
                if flag == 1 or (attempts > 1 and not job.given_id and flag == job.id.encode())
                else _text(flag)
                for job, flag in zip(jobs, flags, strict=True)
            ],
            unlisted == 1,
            int(now),
        )

    # -- worker ---------------------------------------------------------------------

    def _claim_args(self, queue: str, count: int, lease_ms: int, worker_id: str) -> list[Any]:
        keys = self._k(queue)
        token_prefix = f"{worker_id}:{os.urandom(6).hex()}:"
        return [*self._queue_keys(keys), keys.script_base, count, lease_ms, token_prefix, worker_id]

    @staticmethod
    def _claimed(queue: str, reply: list[Any]) -> tuple[list[ClaimedJob], int | None]:
        due_in = int(reply[0])
        # Positional: this runs once per claimed job.
        jobs = [
            ClaimedJob(
                reply[i].decode(),
                queue,
                reply[i + 1].decode(),
                reply[i + 2],
                reply[i + 3],
                reply[i + 4].decode(),
                reply[i + 5],
                reply[i + 6],
            )
            for i in range(2, len(reply), 7)
        ]
        return jobs, (None if due_in < 0 else due_in)

    async def claim(
        self, queue: str, count: int, lease_ms: int, worker_id: str
    ) -> tuple[list[ClaimedJob], int | None]:
        scripts = self._scripts
        assert scripts is not None, "not connected"
        args = self._claim_args(queue, count, lease_ms, worker_id)
        return await self._claim_once(
            queue, args, lambda: scripts.run("claim", args[:_NKEYS], args[_NKEYS:])
        )

    async def _claim_once(
        self, queue: str, args: list[Any], first: Callable[[], Awaitable[Any]]
    ) -> tuple[list[ClaimedJob], int | None]:
        """Claim with ``first()``; never send a claim that may have run again: after a
        lost reply, adopt the jobs leased to its token (``recover.py``), and claim
        anew only if it leased none."""
        scripts, client = self._scripts, self._client_or_fail()
        assert scripts is not None, "not connected"
        tried = False

        async def attempt() -> tuple[list[ClaimedJob], int | None]:
            nonlocal tried
            if not tried:
                tried = True
                return self._claimed(queue, await first())
            adopted = await adopt(client, self._k(queue), queue, args[_NKEYS + 3])
            if adopted:
                return adopted, None
            return self._claimed(queue, await scripts.run("claim", args[:_NKEYS], args[_NKEYS:]))

        return await self._call(attempt)

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        if self._cluster is not None:
            # Each queue's marker lives in its own slot: one wait per queue.
            await self._call(lambda: self._wait_each(queues, timeout, f"w{os.urandom(6).hex()}"))
            return
        blocking = self._blocking_for(queues[0])
        markers = [self._k(q).marker for q in queues]
        # BZPOPMIN's own timeout bounds the wait; a zero would block for ever.
        await self._call(
            lambda: blocking.bzpopmin(markers, timeout=min(max(timeout, 0.001), MAX_BLOCK))
        )

    def _wait_links(self, client: Redis) -> WaitLinks:
        waits = self._waits.get(id(client))
        if waits is None:
            waits = self._waits[id(client)] = WaitLinks()
        return waits

    async def _wait_each(self, queues: Sequence[str], timeout: float, worker_id: str) -> None:
        """Block until any of ``queues`` may have work, one ``BZPOPMIN`` per queue on
        the node that owns it (a cluster); the others are then woken and ended."""
        block = min(max(timeout, 0.001), MAX_BLOCK)
        waits: list[tuple[str, Link, asyncio.Future[Any], WaitLinks]] = []
        try:
            for queue in queues:
                blocking = self._blocking_for(queue)
                links = self._wait_links(blocking)
                link = await links.take(blocking)
                if link is None:  # pragma: no cover - a redis-py that hides its socket
                    raise ConfigurationError("this redis-py cannot wait on a cluster")
                keys = self._k(queue)
                popped = link.send(
                    pack(("BZPOPMIN", keys.marker, keys.wake(worker_id), block), blocking)
                )
                popped.add_done_callback(retrieved)
                waits.append((queue, link, popped, links))
            done, _ = await asyncio.wait([w[2] for w in waits], return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                if isinstance(error := future.result(), Exception):
                    raise error
        finally:
            await self._end_waits(waits, worker_id)

    async def _end_waits(
        self, waits: list[tuple[str, Link, asyncio.Future[Any], WaitLinks]], worker_id: str
    ) -> None:
        woken = [queue for queue, _, popped, _ in waits if not popped.done()]
        for queue in woken:
            await self._wake_own(self._k(queue).wake(worker_id))
        pending = [popped for _, _, popped, _ in waits if not popped.done()]
        if pending:
            await asyncio.wait(pending, timeout=STOP_GIVE_UP)
        for _, link, popped, links in waits:
            links.put(link, popped)
        if woken and (client := self._client) is not None:
            # A pop that ended by its marker left our wake entry behind.
            with contextlib.suppress(RedisError, OSError):
                await client.delete(*(self._k(q).wake(worker_id) for q in woken))

    async def wait_and_claim(
        self,
        queues: Sequence[str],
        timeout: float,
        count: int,
        lease_ms: int,
        worker_id: str,
        stop: asyncio.Event,
    ) -> tuple[list[ClaimedJob], int | None]:
        scripts = self._scripts
        if scripts is None:
            raise ConfigurationError("the backend is not connected (call connect() first)")
        cluster = self._cluster
        if cluster is not None and len(queues) > 1:
            # Their markers live in different slots: wait on each, then claim.
            wait = self._call(lambda: self._wait_each(queues, timeout, worker_id))
            return await wait_then_claim(
                self, queues, timeout, count, lease_ms, worker_id, stop, wait=wait
            )
        blocking = self._blocking_for(queues[0])
        # The claim is pipelined behind the blocking pop on a connection of its own:
        # Redis runs it as soon as the pop returns, so a woken worker gets its jobs in
        # the same round trip, and their replies resolve this call as they are parsed.
        # Its own wake key lets a stopping worker end the pop early.
        own = self._k(queues[0]).wake(worker_id)
        markers = [*(self._k(q).marker for q in queues), own]
        args = self._claim_args(queues[0], count, lease_ms, worker_id)
        waits = self._wait_links(blocking)
        link = await self._call(lambda: waits.take(blocking))
        if link is None:  # pragma: no cover - a redis-py that hides its socket
            return await wait_then_claim(self, queues, timeout, count, lease_ms, worker_id, stop)
        block = min(max(timeout, 0.001), MAX_BLOCK)

        async def wait_then_claim_on_link() -> Any:
            popped = link.send(pack(("BZPOPMIN", *markers, block), blocking))
            claimed = link.send(pack((*scripts.command("claim"), _NKEYS, *args), blocking))
            # Read even when the pop's failure is what gets raised (no "never retrieved").
            claimed.add_done_callback(retrieved)
            stopper = end_on_stop(stop, link, claimed, lambda: self._wake_own(own))
            # A Redis gone silent (paused, partitioned) is noticed a margin after the
            # pop's own timeout, not the socket timeout's much later.
            overdue = asyncio.get_running_loop().call_later(
                block + WAIT_MARGIN,
                link.close,
                RedisTimeoutError(f"no reply from Redis to a {block:g} s blocking wait"),
            )
            try:
                if isinstance(error := await popped, Exception):
                    raise error
                reply = await claimed
                if isinstance(reply, Exception):
                    if not scripts.missing(reply):
                        raise reply
                    # Not loaded yet, or flushed: claim on its own (which loads it).
                    reply = await scripts.run("claim", args[:_NKEYS], args[_NKEYS:])
                return reply
            except (RedisConnectionError, RedisTimeoutError):
                if stop.is_set():  # gave up on an unresponsive Redis to stop: its lease expires
                    return [-1, 0]
                raise
            except ResponseError as exc:
                # The slot moved (resharding, failover): find its node; whatever the
                # claim leased before Redis stopped it is adopted on the retry.
                if cluster is None or not cluster.moved(exc):
                    raise
                raise ClusterUnavailable(f"the cluster moved the queue: {exc}") from exc
            finally:
                overdue.cancel()
                waits.put(link, claimed)
                # Later: unwinding the stop watcher must not delay the jobs' start.
                asyncio.get_running_loop().call_soon(stopper.cancel)

        return await self._claim_once(queues[0], args, wait_then_claim_on_link)

    async def _wake_own(self, key: str) -> None:
        client = self._client
        if client is None:  # closed: its waits ended with their connections
            return
        with contextlib.suppress(RedisError, OSError):
            async with client.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {"stop": 0})
                pipe.pexpire(key, 60_000)
                await pipe.execute()

    async def complete(
        self, queue: str, items: Sequence[Completion], retention: Retention
    ) -> list[bool]:
        args: list[Any] = _retention_args(retention)
        for item in items:
            args += (item.id, item.token, item.result, item.notify)
        reply = await self._run("complete", queue, args)
        return [bool(flag) for flag in reply]

    async def fail(
        self,
        queue: str,
        job_id: str,
        token: str,
        error: bytes,
        retry_in_ms: int | None,
        retention: Retention,
        *,
        count_attempt: bool = True,
        cancelled: Retention = KEEP_ALL,
        notify: str = "",
    ) -> bool:
        retry = -1 if retry_in_ms is None else max(0, retry_in_ms)
        args = [job_id, token, error, retry, int(count_attempt), *_retention_args(retention)]
        args += [*_retention_args(cancelled), notify]
        return bool(await self._run("fail", queue, args))

    async def abort(
        self,
        queue: str,
        job_id: str,
        token: str,
        reason: bytes,
        retention: Retention = KEEP_ALL,
        notify: str = "",
    ) -> bool:
        args = [job_id, token, reason, *_retention_args(retention), notify]
        return bool(await self._run("abort", queue, args))

    async def release(
        self, queue: str, leases: Sequence[tuple[str, str]], cancelled: Retention = KEEP_ALL
    ) -> int:
        if not leases:
            return 0
        args: list[Any] = _retention_args(cancelled)
        args += [part for lease in leases for part in lease]
        return int(await self._run("release", queue, args))

    async def renew(
        self, queue: str, leases: Sequence[tuple[str, str]], lease_ms: int
    ) -> tuple[list[str], list[str]]:
        if not leases:
            return [], []
        args: list[Any] = [lease_ms, *(part for lease in leases for part in lease)]
        lost, cancel = await self._run("renew", queue, args)
        return [i.decode() for i in lost], [i.decode() for i in cancel]

    async def update(
        self,
        queue: str,
        job_id: str,
        token: str,
        progress: bytes | None = None,
        logs: Sequence[str] = (),
    ) -> bool:
        args = [job_id, token, 0 if progress is None else 1, progress or b"", *logs]
        return bool(await self._run("update", queue, args))

    async def reap_stalled(
        self,
        queue: str,
        max_stalls: int,
        failed: Retention = KEEP_ALL,
        cancelled: Retention = KEEP_ALL,
    ) -> tuple[list[str], list[str]]:
        args = [max_stalls, *_retention_args(failed), *_retention_args(cancelled)]
        requeued, dead = await self._run("reap", queue, args)
        return [i.decode() for i in requeued], [i.decode() for i in dead]

    # -- control --------------------------------------------------------------------

    async def cancel(self, queue: str, job_id: str, retention: Retention = KEEP_ALL) -> JobState:
        state = (await self._run("cancel", queue, [job_id, *_retention_args(retention)])).decode()
        if state == "missing":
            raise JobNotFound(f"no job {job_id!r} in queue {queue!r}")
        result = JobState(state)
        if result in (JobState.COMPLETED, JobState.FAILED):
            raise InvalidTransition(f"job {job_id!r} is already {state}; it cannot be cancelled")
        return result

    async def retry(self, queue: str, job_ids: Sequence[str]) -> list[bool]:
        if not job_ids:
            return []
        return [bool(flag) for flag in await self._run("retry", queue, list(job_ids))]

    async def promote(self, queue: str, job_id: str) -> bool:
        return bool(await self._run("promote", queue, [job_id]))

    async def remove(self, queue: str, job_id: str) -> bool:
        result = int(await self._run("remove", queue, [job_id]))
        if result < 0:
            raise InvalidTransition(f"job {job_id!r} is active; cancel it before removing it")
        return result == 1

    async def clean(self, queue: str, state: JobState, older_than_ms: int, limit: int) -> int:
        if not state.terminal:
            raise InvalidTransition(f"only finished jobs can be cleaned, not {state.value!r}")
        total = 0
        while total < limit:
            batch = min(1000, limit - total)
            removed = int(await self._run("clean", queue, [state.value, older_than_ms, batch]))
            total += removed
            if removed < batch:
                break
        return total

    async def drain(self, queue: str, delayed: bool) -> int:
        total = 0
        while True:
            removed = int(await self._run("drain", queue, [int(delayed)]))
            total += removed
            if removed == 0:
                return total

    async def wait_finished(self, queue: str, job_id: str, timeout: float) -> JobState | None:
        client = self._client_or_fail()
        assert self._waiters is not None
        key = self._k(queue).job(job_id)

        async def read_state() -> JobState:
            raw, name = await self._call(lambda: client.hmget(key, "state", "name"))
            if raw is None and name is None:
                raise JobNotFound(f"no job {job_id!r} in queue {queue!r}")
            return JobState(_text(raw)) if raw is not None else JobState.WAITING

        channel = self._k(queue).events
        with self._translate():
            return await bounded_wait(
                timeout, self._waiters.wait(queue, channel, job_id, read_state)
            )

    async def watch_cancellations(
        self, queues: Sequence[str], callback: Callable[[str, str], None]
    ) -> Callable[[], Awaitable[None]]:
        assert self._hub is not None
        unsubscribers = []
        for queue in queues:

            def on_control(data: bytes, queue: str = queue) -> None:
                command, _, job_id = data.partition(b" ")
                if command == b"cancel":
                    callback(queue, job_id.decode())

            with self._translate():
                unsubscribers.append(await self._hub.subscribe(self._k(queue).control, on_control))

        async def stop() -> None:
            for unsubscribe in unsubscribers:
                unsubscribe()

        return stop

    async def events(self, queue: str) -> AsyncGenerator[tuple[str, str], None]:
        assert self._hub is not None, "not connected"
        with self._translate():
            return await EventStream().open(self._hub, self._k(queue).events)

    async def time_ms(self) -> int:
        client = self._client_or_fail()
        seconds, micros = await self._call(client.time)
        return int(seconds) * 1000 + int(micros) // 1000

    # -- workers --------------------------------------------------------------------
