"""Pub/sub on Redis Cluster: shard channels, each heard on the node that owns it.

On a cluster the scripts publish with ``SPUBLISH``: a message stays on its queue's
shard instead of crossing the cluster bus to every node, so adding shards adds
pub/sub capacity too. :class:`ShardedHub` offers the :class:`~.pubsub.Hub` interface
over one hub per node (``SSUBSCRIBE`` there). When a node's connection is lost (the
node died and a replica took over) or Redis drops a channel whose slot moved away
(resharding), every channel of that node is subscribed again on its owner by the
current slot map, and gap listeners hear that messages may have been missed.

Shard channels have no patterns: :meth:`ShardedHub.subscribe_queues` follows every
queue in the registry instead, picking up new ones every ``QUEUE_POLL`` seconds. A
queue found that way is announced as a gap: its first events went out before anyone
listened, so readers re-read what they show. A queue this process creates is followed
before its first job is stored (:meth:`ShardedHub.follow_queue`), so nothing is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from corral.backends.redis.cluster import MuxCluster
from corral.backends.redis.connection import Reconnect
from corral.backends.redis.pubsub import SUBSCRIBE_TIMEOUT, Handler, Hub, HubClosed
from corral.backends.redis.wait import retrieved
from redis.exceptions import RedisError

__all__ = ["QUEUE_POLL", "ShardedHub"]

log = logging.getLogger("corral.redis")

QUEUE_POLL = 2.0  # seconds between looks for new queues (all-queue streams)
_PAUSE_AFTER_ERROR = 0.5
_MOVE_TIMEOUT = 1.0  # seconds a moved channel's SSUBSCRIBE may take before a new map


@dataclass
class _Sub:
    channel: str
    handler: Handler
    node: str
    unsubscribe: Callable[[], None]


class ShardedHub:
    """Channel subscriptions over one :class:`Hub` per cluster node."""

    def __init__(self, cluster: MuxCluster, reconnect: Reconnect) -> None:
        self._cluster = cluster
        self._reconnect = reconnect
        self._hubs: dict[str, Hub] = {}
        self._subs: dict[int, _Sub] = {}
        self._tokens = itertools.count()
        self._gap_listeners: set[Callable[[], None]] = set()
        self._lost: set[str] = set()
        self._mover: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # The all-queue streams' "listen to this queue too" (see follow_queue).
        self._followers: set[Callable[[str], Awaitable[bool]]] = set()

    def _hub_for(self, channel: str) -> tuple[str, Hub]:
        node = self._cluster.get_node_from_key(channel)
        if node is None:  # pragma: no cover - redis-py raises for an uncovered slot
            raise RedisError(f"no node serves the slot of {channel!r}")
        hub = self._hubs.get(node.name)
        if hub is None:
            client = self._cluster.node_client(channel)
            hub = Hub(
                client,
                self._reconnect,
                sharded=True,
                on_lost=functools.partial(self._node_lost, node.name),
            )
            self._hubs[node.name] = hub
        return node.name, hub

    async def subscribe(
        self, channel: str, handler: Handler, timeout: float | None = SUBSCRIBE_TIMEOUT
    ) -> Callable[[], None]:
        """:meth:`Hub.subscribe` on the node that owns ``channel``, wherever it moves."""
        if not self._cluster.nodes_manager.slots_cache:
            await self._cluster.nodes_manager.initialize()
        while True:
            node, hub = self._hub_for(channel)
            try:
                unsubscribe = await hub.subscribe(channel, handler, timeout)
                break
            except HubClosed:
                # The node's hub was replaced while we waited (its connection was
                # lost): subscribe where the channel is heard now.
                continue
        token = next(self._tokens)
        self._subs[token] = _Sub(channel, handler, node, unsubscribe)
        return functools.partial(self._drop, token)

    def _drop(self, token: int) -> None:
        sub = self._subs.pop(token, None)
        if sub is not None:
            sub.unsubscribe()

    def on_gap(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` once channels moved to another node are heard again."""
        self._gap_listeners.add(listener)
        return functools.partial(self._gap_listeners.discard, listener)

    def _node_lost(self, node: str) -> None:
        self._lost.add(node)
        if self._mover is None or self._mover.done():
            self._mover = asyncio.ensure_future(self._move())
            self._mover.add_done_callback(retrieved)

    async def _move(self) -> None:
        """Subscribe the channels of lost nodes again where the slot map says, until
        each is confirmed; then tell the gap listeners."""
        while self._lost:
            lost, self._lost = self._lost, set()
            for node in lost:
                hub = self._hubs.pop(node, None)
                if hub is not None:
                    self._spawn(hub.close())
            with contextlib.suppress(RedisError, OSError):
                await self._cluster.nodes_manager.initialize()
            for token, sub in list(self._subs.items()):
                if sub.node not in lost:
                    continue
                sub.unsubscribe()
                try:
                    node, hub = self._hub_for(sub.channel)
                    # Briefly: during a failover the map may still name the dead node.
                    sub.unsubscribe = await hub.subscribe(
                        sub.channel, sub.handler, timeout=_MOVE_TIMEOUT
                    )
                    sub.node = node
                except (RedisError, OSError, TimeoutError) as exc:
                    log.debug("cannot subscribe %s again yet (%s)", sub.channel, exc)
                    sub.unsubscribe = _nothing
                    self._lost.add(sub.node)  # tried again next round
                if token not in self._subs:  # dropped meanwhile
                    sub.unsubscribe()
            if self._lost:
                await asyncio.sleep(_PAUSE_AFTER_ERROR)
        self._tell_gap()

    def _tell_gap(self) -> None:
        for listener in list(self._gap_listeners):
            try:
                listener()
            except Exception:
                log.exception("pub/sub gap listener failed")

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def subscribe_queues(
        self,
        channel_of: Callable[[str], str],
        queues: Callable[[], Awaitable[list[str]]],
        handler: Callable[[str, bytes], None],
    ) -> Callable[[], None]:
        """Call ``handler(queue, data)`` for each message on ``channel_of(queue)`` of
        every queue ``queues()`` lists, now and as new ones appear; returns the
        function that stops it."""
        stops: dict[str, Callable[[], None]] = {}

        async def follow_one(queue: str) -> bool:
            if queue in stops:
                return False
            stops[queue] = await self.subscribe(
                channel_of(queue), functools.partial(handler, queue)
            )
            return True

        async def follow() -> bool:
            found = False
            for queue in await queues():
                found = await follow_one(queue) or found
            return found

        await follow()
        self._followers.add(follow_one)

        async def poll() -> None:
            while True:
                await asyncio.sleep(QUEUE_POLL)
                try:
                    if await follow():
                        # The new queue's first events came before we listened.
                        self._tell_gap()
                except (RedisError, OSError, TimeoutError) as exc:
                    log.debug("cannot list queues for the event stream (%s)", exc)

        poller = asyncio.ensure_future(poll())

        def stop() -> None:
            self._followers.discard(follow_one)
            poller.cancel()
            for unsubscribe in stops.values():
                unsubscribe()
            stops.clear()

        return stop

    async def follow_queue(self, queue: str) -> None:
        """Have every all-queue stream listen to ``queue`` now: this process is about
        to create it, and its first events must not go out unheard."""
        for follow in list(self._followers):
            await follow(queue)

    async def close(self) -> None:
        """Close every node's hub."""
        for task in (self._mover, *self._tasks):
            if task is not None:
                task.cancel()
        for hub in self._hubs.values():
            await hub.close()
        self._hubs.clear()
        self._subs.clear()
        self._gap_listeners.clear()


def _nothing() -> None:
    return None
