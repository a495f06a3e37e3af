"""Waiting for jobs to finish, woken by their transitions' pub/sub events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from corral.backends.base import JobState
from corral.backends.redis.pubsub import Subscriber

__all__ = ["RECHECK", "Waiters"]

_TERMINAL_EVENTS = frozenset({b"completed", b"failed", b"cancelled", b"removed"})

#: Seconds between re-reads of a waited-for job: a message lost while the pub/sub
#: connection was down (a Redis restart) delays the answer by at most this much.
RECHECK = 2.0


class Waiters:
    """Futures of callers waiting for a job, resolved by the queue's event channel.

    A queue's channel is subscribed while someone waits on one of its jobs (one
    handler per queue, however many wait)."""

    def __init__(self, hub: Subscriber) -> None:
        self._hub = hub
        self._futures: dict[tuple[str, str], list[asyncio.Future[bytes]]] = {}
        self._handlers: dict[str, Callable[[bytes], None]] = {}

    def _handler(self, queue: str) -> Callable[[bytes], None]:
        handler = self._handlers.get(queue)
        if handler is None:

            def handler(data: bytes) -> None:
                # "<event> <id> [<id> ...]": a batch transition publishes once.
                event, _, ids = data.partition(b" ")
                if event not in _TERMINAL_EVENTS or not self._futures:
                    return
                for job_id in ids.decode().split(" "):
                    for future in self._futures.pop((queue, job_id), ()):
                        if not future.done():
                            future.set_result(event)

            self._handlers[queue] = handler
        return handler

    async def wait(
        self,
        queue: str,
        channel: str,
        job_id: str,
        read_state: Callable[[], Awaitable[JobState]],
    ) -> JobState:
        """Wait until ``read_state()`` is terminal, however long that takes: the
        caller bounds the wait. The future is registered before each read, and the
        channel subscribed before the first, so no transition can be missed."""
        key = (queue, job_id)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._futures.setdefault(key, []).append(future)
        try:
            unsubscribe = await self._hub.subscribe(channel, self._handler(queue), timeout=None)
            try:
                while True:
                    state = await read_state()
                    if state.terminal:
                        return state
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(RECHECK):
                            await future
                    # Re-arm before reading again; the job may also have been retried
                    # or removed since the event.
                    self._discard(key, future)
                    future = loop.create_future()
                    self._futures.setdefault(key, []).append(future)
            finally:
                unsubscribe()
        finally:
            self._discard(key, future)

    def _discard(self, key: tuple[str, str], future: asyncio.Future[bytes]) -> None:
        current = self._futures.get(key)
        if current is not None:
            with contextlib.suppress(ValueError):
                current.remove(future)
            if not current:
                del self._futures[key]
