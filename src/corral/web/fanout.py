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
from collections.abc import AsyncGenerator

import orjson

from corral.app import Corral
from corral.errors import BackendError

__all__ = ["BACKLOG", "QueueFeed", "QueueFeeds"]

log = logging.getLogger("corral.web")

#: Events a feed keeps for listeners that are behind; one further behind resyncs.
BACKLOG = 10_000
#: Seconds between two wake-ups of a listener: at least MIN_TICK, and
#: TICK_PER_LISTENER per listener of the feed (0.2 s with 500), so waking them takes a
#: bounded share of the event loop however many there are and however fast events come
#: (each wake-up is one write, a system call, per listener).
MIN_TICK = 0.02
TICK_PER_LISTENER = 0.0004
#: Listeners are spread over this many groups, woken one after the other across a
#: tick, so that a tick is several short pauses of the event loop, not one long one.
SLOTS = 8


def encode(name: str, data: object) -> bytes:
    """One Server-Sent Event as sent on the wire (sse-starlette's layout)."""
    return b"event: " + name.encode() + b"\r\ndata: " + orjson.dumps(data) + b"\r\n\r\n"


class QueueFeed:
    """The event stream of one queue, shared by this process's listeners (see the
    module doc). Positions count events since the feed opened."""

    def __init__(self, corral: Corral, queue: str) -> None:
        self.queue = queue
        self._corral = corral
        # The events kept; _log[0] is at position ``first``. Trimmed by halves, so
        # that taking a listener's share is a slice, never a walk from the start.
        self._log: list[bytes] = []
        #: Position of the oldest event kept, and the position the next event gets.
        self.first = 0
        self.next = 0
        self.listeners = 0
        self._joined = 0
        # The last chunk handed out: the listeners of a slot woken together are at
        # the same position, and share one join of the same events.
        self._chunk: tuple[int, int, bytes] = (0, 0, b"")
        #: Set once the feed ended: by the backend (``failed``) or by closing.
        self.failed: BackendError | None = None
        self.closed = False
        self._stream: AsyncGenerator[tuple[str, str], None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._ticks = [asyncio.Event() for _ in range(SLOTS)]
        self._slot = 0  # the slot the next wake-up wakes
        self._seen = [0] * SLOTS  # per slot, ``next`` when it was last woken
        self._timer: asyncio.TimerHandle | None = None

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
                if len(self._log) >= 2 * BACKLOG:
                    del self._log[:-BACKLOG]
                    self.first = self.next - BACKLOG
                self._schedule()
        except BackendError as exc:
            log.error("stream of queue %s ended: %s: %s", self.queue, type(exc).__name__, exc)
            self.failed = exc
        finally:
            self.closed = True
            self._wake_all()

    def slot(self) -> int:
        """The wake-up group of a new listener."""
        self._joined += 1
        return self._joined % SLOTS

    def _schedule(self) -> None:
        """Wake the slots one after the other, a tick for all of them, while events come."""
        if self._timer is None:
            step = max(MIN_TICK, self.listeners * TICK_PER_LISTENER) / SLOTS
            self._timer = asyncio.get_running_loop().call_later(step, self._wake_slot)

    def _wake_slot(self) -> None:
        self._timer = None
        slot = self._slot
        self._slot = (slot + 1) % SLOTS
        if self._seen[slot] != self.next:
            self._seen[slot] = self.next
            # A fresh Event: listeners woken by this one and those that come to wait
            # afterwards never share a wake-up.
            tick, self._ticks[slot] = self._ticks[slot], asyncio.Event()
            tick.set()
        if not self.closed and any(seen != self.next for seen in self._seen):
            self._schedule()  # the other slots' turn

    def _wake_all(self) -> None:
        for tick in self._ticks:
            tick.set()

    async def wait(self, position: int, slot: int) -> None:
        """Until there is something past ``position`` at a tick of ``slot``, or the
        feed ended (at once if that is already so)."""
        if position < self.next or self.closed:
            return
        await self._ticks[slot].wait()

    def since(self, position: int) -> bytes | None:
        """Every event from ``position`` on, as one chunk; None when ``position`` is
        no longer kept (the listener fell behind)."""
        if position < self.first:
            return None
        start, end, chunk = self._chunk
        if (start, end) != (position, self.next):
            chunk = b"".join(self._log[position - self.first :])
            self._chunk = (position, self.next, chunk)
        return chunk

    async def close(self) -> None:
        """End the stream (its listeners see ``closed``)."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake_all()
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
