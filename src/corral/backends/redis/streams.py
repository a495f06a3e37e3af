"""Every queue's lifecycle events in one subscription on Redis.

A mixin of :class:`RedisBackend`: one ``PSUBSCRIBE`` to the events channels of every
queue (``{prefix}:{*}:{db}:events``, see ``keys.py``) on the backend's pub/sub hub,
whatever the number of queues, including queues created later.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncGenerator, Awaitable, Callable

from corral.backends.redis.pubsub import Hub, Inbox, Subscriber
from corral.backends.redis.sharded import ShardedHub
from corral.policy import QUEUE_NAME

__all__ = ["GAP", "AllEventStream", "RedisStreams"]

_QUEUE = re.compile(QUEUE_NAME.encode())
_GLOB = re.compile(r"([*?\[\]\\])")


#: What the stream yields after a lost pub/sub connection came back (see base.py).
GAP = ("", "gap", "")


class AllEventStream(Inbox[tuple[str, str, str]]):
    """``(queue, event, job_id)`` from the events channel of every queue, and
    :data:`GAP` once the subscription is back after a lost connection."""

    def __init__(self, prefix: str, db: int, maxsize: int = 10_000) -> None:
        super().__init__(maxsize)
        self._head = f"{prefix}:{{".encode()
        self._tail = f"}}:{db}:events".encode()
        escaped = _GLOB.sub(r"\\\1", prefix)  # a prefix is text, not a pattern
        self.pattern = f"{escaped}:{{*}}:{db}:events"

    def on_message(self, channel: bytes, data: bytes) -> None:
        """The hub handler: the queue is in the channel name, the message is
        ``"<event> <id> [<id> ...]"``."""
        queue = channel[len(self._head) : -len(self._tail)]
        # The pattern's * also matches names no queue can have (braces, other
        # prefixes that start like ours): only a valid queue name counts.
        if not _QUEUE.fullmatch(queue):
            return
        name = queue.decode()
        event, *job_ids = data.decode().split(" ")
        for job_id in job_ids:
            if not self.put((name, event, job_id)):
                return

    def on_gap(self) -> None:
        self.put(GAP)

    def on_queue_message(self, queue: str, data: bytes) -> None:
        """The sharded hub's handler: a message on ``queue``'s events channel."""
        self.on_message(self._head + queue.encode() + self._tail, data)

    async def open(
        self, hub: Subscriber, queues: Callable[[], Awaitable[list[str]]]
    ) -> AllEventStream:
        if isinstance(hub, ShardedHub):
            # Shard channels have no patterns: follow every queue of the registry.
            head, tail = self._head.decode(), self._tail.decode()
            unsubscribe = await hub.subscribe_queues(
                lambda queue: head + queue + tail, queues, self.on_queue_message
            )
        else:
            assert isinstance(hub, Hub)
            unsubscribe = await hub.psubscribe(self.pattern, self.on_message)
        forget_gaps = hub.on_gap(self.on_gap)

        def stop() -> None:
            unsubscribe()
            forget_gaps()

        self._unsubscribe = stop
        return self


class RedisStreams:
    """``all_events`` (see the module docstring); the backend provides the rest."""

    prefix: str
    db: int
    _hub: Subscriber | None

    async def queues(self) -> list[str]:
        raise NotImplementedError

    def _translate(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    async def all_events(self) -> AsyncGenerator[tuple[str, str, str], None]:
        hub = self._hub
        assert hub is not None, "not connected"
        with self._translate():
            return await AllEventStream(self.prefix, self.db).open(hub, self.queues)
