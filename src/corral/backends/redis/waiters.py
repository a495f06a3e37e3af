"""Waiting for jobs to finish, woken by their transitions' pub/sub events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from corral.backends.base import JobState
from corral.backends.redis.pubsub import Hub

__all__ = ["Waiters"]

_TERMINAL_EVENTS = frozenset({b"completed", b"failed", b"cancelled", b"removed"})


class Waiters:
    """Futures of callers waiting for a job, resolved by the queue's event channel."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._futures: dict[tuple[str, str], list[asyncio.Future[bytes]]] = {}
        self._watched: set[str] = set()

    async def watch(self, queue: str, channel: str) -> None:
        """Subscribe to a queue's events once (confirmed before returning)."""
        if channel in self._watched:
            return

        def on_event(data: bytes) -> None:
            # "<event> <id> [<id> ...]": a batch transition publishes once.
            event, _, ids = data.partition(b" ")
            if event not in _TERMINAL_EVENTS or not self._futures:
                return
            for job_id in ids.decode().split(" "):
                for future in self._futures.pop((queue, job_id), ()):
                    if not future.done():
                        future.set_result(event)

        await self._hub.subscribe(channel, on_event)
        self._watched.add(channel)

    async def wait(
        self,
        queue: str,
        job_id: str,
        read_state: Callable[[], Awaitable[JobState]],
        timeout: float,
    ) -> JobState | None:
        """Wait until ``read_state()`` is terminal; the future is registered before
        each read, so a transition in between cannot be missed."""
        key = (queue, job_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        future: asyncio.Future[bytes] = loop.create_future()
        self._futures.setdefault(key, []).append(future)
        try:
            while True:
                state = await read_state()
                if state.terminal:
                    return state
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                try:
                    # Capped: a message lost while the pub/sub connection was down
                    # (Redis restart) delays the answer by at most this much.
                    async with asyncio.timeout(min(remaining, 2.0)):
                        await future
                except TimeoutError:
                    if deadline - loop.time() <= 0:
                        return None
                # Re-arm before reading again; the job may also have been retried or
                # removed since the event.
                self._discard(key, future)
                future = loop.create_future()
                self._futures.setdefault(key, []).append(future)
        finally:
            self._discard(key, future)

    def _discard(self, key: tuple[str, str], future: asyncio.Future[bytes]) -> None:
        current = self._futures.get(key)
        if current is not None:
            with contextlib.suppress(ValueError):
                current.remove(future)
            if not current:
                del self._futures[key]
