"""Every queue's lifecycle events for any number of consumers in this process, through
one backend subscription.

:meth:`corral.Corral.events` hands out :class:`Subscription` objects. Behind them one
:class:`EventFeed` per event loop holds a single :meth:`Backend.all_events` stream
(opened for the first consumer, closed when the last one leaves) and one task that
copies each event into every consumer's buffer. Buffers are bounded and never wait:
a consumer that falls behind loses its oldest events (counted in ``dropped``), so it
slows nobody else and its memory stays capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from corral.errors import ValidationError
from corral.policy import check_queue_name

__all__ = ["Event", "EventFeed", "Subscription"]

log = logging.getLogger("corral.events")

#: Seconds between attempts to subscribe again after the backend stream failed.
RETRY = 1.0

Opener = Callable[[], Awaitable[AsyncGenerator[tuple[str, str, str], None]]]


@dataclass(frozen=True, slots=True)
class Event:
    """One lifecycle event: ``name`` is added, active, progress, log, retrying,
    completed, failed, cancelled, waiting or removed."""

    queue: str
    name: str
    job_id: str


class Subscription:
    """One consumer of the shared feed: ``async for event in subscription``, and
    ``aclose()`` to leave (``async with`` does both ends).

    Holds up to ``buffer`` events; past that the oldest are dropped and counted in
    :attr:`dropped` (also raised once for every gap in the backend stream itself),
    so a consumer can tell that it must re-read what it shows.
    """

    def __init__(self, feed: EventFeed, buffer: int, queues: frozenset[str] | None) -> None:
        self._feed = feed
        self._events: deque[Event] = deque()
        self._buffer = buffer
        self._queues = queues
        self._ready = asyncio.Event()
        self.closed = False
        #: Events this consumer lost (it fell ``buffer`` events behind; raised by one
        #: for each gap upstream: a lost Redis connection, a broken backend stream).
        self.dropped = 0

    def offer(self, event: Event) -> None:
        """Buffer an event (never blocks: drops the oldest when full)."""
        if self._queues is not None and event.queue not in self._queues:
            return
        if len(self._events) >= self._buffer:
            self._events.popleft()
            self.dropped += 1
        self._events.append(event)
        self._ready.set()

    def lost(self) -> None:
        """The feed itself missed events."""
        self.dropped += 1
        self._ready.set()

    @property
    def pending(self) -> int:
        """Events buffered and not yet read."""
        return len(self._events)

    def drain(self) -> list[Event]:
        """Every buffered event, at once and without waiting."""
        events = list(self._events)
        self._events.clear()
        self._ready.clear()
        return events

    async def wait(self) -> None:
        """Until an event is buffered, an event was lost, or the subscription closed
        (then :meth:`drain` to take the events and re-arm it)."""
        if self._events or self.closed:
            return
        await self._ready.wait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while not self._events:
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _end(self) -> None:
        self.closed = True
        self._ready.set()

    async def aclose(self) -> None:
        """Leave the feed (the backend subscription closes with its last consumer)."""
        if not self.closed:
            self._end()
            await self._feed.leave(self)


class EventFeed:
    """The one backend event stream of an event loop, shared (see the module doc).

    ``open_stream`` opens a :meth:`Backend.all_events` stream.
    """

    def __init__(self, open_stream: Opener) -> None:
        self._open = open_stream
        self._consumers: set[Subscription] = set()
        self._stream: AsyncGenerator[tuple[str, str, str], None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def subscriptions(self) -> int:
        """Backend subscriptions open: 1 while anyone listens, else 0."""
        return 0 if self._pump is None else 1

    @property
    def consumers(self) -> int:
        """Subscriptions handed out and not closed."""
        return len(self._consumers)

    async def subscribe(
        self, *, queues: Iterable[str] | None = None, buffer: int = 1000
    ) -> Subscription:
        """A new consumer; returns once the backend stream is subscribed, so every
        event after the call reaches it."""
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise ValidationError(f"buffer must be an integer >= 1, got {buffer!r}")
        wanted = None if queues is None else frozenset(check_queue_name(q) for q in queues)
        async with self._lock:
            if self._pump is None:
                self._stream = await self._open()
                self._pump = asyncio.create_task(self._run(), name="corral-events")
            subscription = Subscription(self, buffer, wanted)
            self._consumers.add(subscription)
        return subscription

    async def _run(self) -> None:
        while True:
            stream = self._stream
            try:
                if stream is None:
                    stream = self._stream = await self._open()
                async for queue, name, job_id in stream:
                    if not queue and name == "gap":  # events were lost upstream
                        for consumer in list(self._consumers):
                            consumer.lost()
                        continue
                    event = Event(queue, name, job_id)
                    for consumer in list(self._consumers):
                        consumer.offer(event)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the feed must outlive backend trouble
                log.warning("event stream failed (%s); subscribing again in %.0f s", exc, RETRY)
                self._stream = None
                for consumer in list(self._consumers):
                    consumer.lost()
                if stream is not None:
                    with contextlib.suppress(Exception):
                        await stream.aclose()
                await asyncio.sleep(RETRY)

    async def leave(self, subscription: Subscription) -> None:
        """Drop a consumer; the last one out closes the backend stream."""
        async with self._lock:
            self._consumers.discard(subscription)
            if not self._consumers:
                await self._stop()

    async def _stop(self) -> None:
        pump, stream = self._pump, self._stream
        self._pump = self._stream = None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.aclose()

    async def close(self) -> None:
        """End every consumer's iteration and close the backend stream."""
        async with self._lock:
            for consumer in list(self._consumers):
                consumer._end()
            self._consumers.clear()
            await self._stop()
