"""One pub/sub connection per backend, shared by every listener.

Result waiters and workers' cancellation watchers subscribe to channels here; a
single reader task dispatches each message to the handlers of its channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

__all__ = ["Hub"]

log = logging.getLogger("corral.redis")

Handler = Callable[[bytes], None]


class Hub:
    """Channel subscriptions multiplexed over one connection."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._handlers: dict[bytes, set[Handler]] = {}
        self._ready: dict[bytes, asyncio.Event] = {}
        self._lock = asyncio.Lock()

    async def subscribe(self, channel: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(data)`` for each message on ``channel`` from now on.

        Returns only once the server has confirmed the subscription, so a caller
        that reads state afterwards cannot miss a message published in between.
        """
        key = channel.encode()
        async with self._lock:
            self._handlers.setdefault(key, set()).add(handler)
            ready = self._ready.get(key)
            if ready is None:
                ready = self._ready[key] = asyncio.Event()
                if self._pubsub is None:
                    self._pubsub = self._client.pubsub()
                await self._pubsub.subscribe(key)
                if self._reader is None or self._reader.done():
                    self._reader = asyncio.create_task(self._read(), name="corral-pubsub")
        await ready.wait()

        def unsubscribe() -> None:
            handlers = self._handlers.get(key)
            if handlers is not None:
                handlers.discard(handler)

        return unsubscribe

    async def _read(self) -> None:
        assert self._pubsub is not None
        pubsub = self._pubsub
        while True:
            try:
                message = await pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("pub/sub connection failed (%s); reconnecting", exc)
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            channel = message["channel"]
            if message["type"] == "subscribe":
                event = self._ready.get(channel)
                if event is not None:
                    event.set()
            elif message["type"] == "message":
                for handler in list(self._handlers.get(channel, ())):
                    try:
                        handler(message["data"])
                    except Exception:  # a listener's bug must not stop the others
                        log.exception("pub/sub handler failed")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        self._handlers.clear()
        self._ready.clear()
