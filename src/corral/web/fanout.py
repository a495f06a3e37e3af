"""One backend subscription per queue for every SSE listener of a serve process.

``GET /api/v1/queues/{queue}/events`` streams are many readers of the same few
queues. A :class:`QueueFeed` holds the one event stream of its queue (opened for the
first listener, closed when the last one leaves) and one task that encodes each
event once, as the SSE bytes every listener sends, into a log numbered from 0.
Listeners keep their own position in that log and are woken once per *tick*, so a
listener sends everything new since its last write in one write, and the event loop
wakes each listener a bounded number of times a second whatever the event rate.

The log is bounded (:data:`BACKLOG` events): a listener whose client reads slower
than events arrive falls behind the log's start, sends one ``resync`` event and
closes (its client re-reads what it shows and opens a new stream). It never holds
up the others: nothing waits for a listener, and a listener blocked on its socket
only blocks itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator
from itertools import islice

import orjson

from corral.app import Corral
from corral.errors import BackendError

__all__ = ["BACKLOG", "QueueFeed", "QueueFeeds"]

log = logging.getLogger("corral.web")

#: Events a feed keeps for listeners that are behind; one further behind resyncs.
BACKLOG = 10_000
#: Seconds between two wake-ups of a feed's listeners: at least MIN_TICK, and
#: TICK_PER_LISTENER per listener (0.1 s with 500), so waking the listeners takes a
#: bounded share of the event loop however many there are and however fast events come.
MIN_TICK = 0.02
TICK_PER_LISTENER = 0.0002


def encode(name: str, data: object) -> bytes:
    """One Server-Sent Event as sent on the wire (sse-starlette's layout)."""
    return b"event: " + name.encode() + b"\r\ndata: " + orjson.dumps(data) + b"\r\n\r\n"


class QueueFeed:
    """The event stream of one queue, shared by this process's listeners (see the
    module doc). Positions count events since the feed opened."""

    def __init__(self, corral: Corral, queue: str) -> None:
        self.queue = queue
        self._corral = corral
        self._log: deque[bytes] = deque()
        #: Position of the oldest event kept, and the position the next event gets.
        self.first = 0
        self.next = 0
        self.listeners = 0
        #: Set once the feed ended: by the backend (``failed``) or by closing.
        self.failed: BackendError | None = None
        self.closed = False
        self._stream: AsyncGenerator[tuple[str, str], None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._tick = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._woken_at = 0.0

    async def open(self) -> None:
        """Subscribe (raises the backend's error: no stream is then opened)."""
        self._stream = await self._corral.queue(self.queue).events()
        self._pump = asyncio.create_task(self._run(), name=f"corral-feed-{self.queue}")

    async def _run(self) -> None:
        assert self._stream is not None
        try:
            async for name, job_id in self._stream:
                self._log.append(encode(name, {"id": job_id}))
                self.next += 1
                if len(self._log) > BACKLOG:
                    self._log.popleft()
                    self.first += 1
                self._schedule()
        except BackendError as exc:
            log.error("stream of queue %s ended: %s: %s", self.queue, type(exc).__name__, exc)
            self.failed = exc
        finally:
            self.closed = True
            self._wake()

    def _schedule(self) -> None:
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        tick = max(MIN_TICK, self.listeners * TICK_PER_LISTENER)
        delay = max(0.0, self._woken_at + tick - loop.time())
        self._timer = loop.call_later(delay, self._wake)

    def _wake(self) -> None:
        self._timer = None
        self._woken_at = asyncio.get_running_loop().time()
        # A fresh Event: listeners woken by this one and those that come to wait
        # afterwards never share a wake-up.
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def wait(self, position: int) -> None:
        """Until there is something past ``position`` at a tick, or the feed ended
        (at once if that is already so)."""
        if position < self.next or self.closed:
            return
        await self._tick.wait()

    def since(self, position: int) -> bytes | None:
        """Every event from ``position`` on, as one chunk; None when ``position`` is
        no longer kept (the listener fell behind)."""
        if position < self.first:
            return None
        return b"".join(islice(self._log, position - self.first, None))

    async def close(self) -> None:
        """End the stream (its listeners see ``closed``)."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._wake()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await self._stream.aclose()


class QueueFeeds:
    """The open :class:`QueueFeed` of each queue (one serve process, one event loop)."""

    def __init__(self) -> None:
        self._feeds: dict[str, QueueFeed] = {}
        self._lock: asyncio.Lock | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def join(self, corral: Corral, queue: str) -> QueueFeed:
        """The feed of ``queue``, subscribed (opened if it is the first listener);
        each join is paired with a :meth:`leave`."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            feed = self._feeds.get(queue)
            if feed is None or feed.closed:
                feed = QueueFeed(corral, queue)
                await feed.open()
                self._feeds[queue] = feed
            feed.listeners += 1
            return feed

    def leave(self, feed: QueueFeed) -> None:
        """A listener is gone; the last one closes the feed (never waits: it runs in
        the cleanup of a cancelled stream)."""
        feed.listeners -= 1
        if feed.listeners > 0:
            return
        if self._feeds.get(feed.queue) is feed:
            del self._feeds[feed.queue]
        task = asyncio.create_task(feed.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every feed (the app is shutting down)."""
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await feed.close()
        for task in list(self._closing):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
