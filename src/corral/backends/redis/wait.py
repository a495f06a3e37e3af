"""An idle worker's blocking wait: the connections it runs on, and ending it on stop.

Each wait (``BZPOPMIN`` with the claim pipelined behind it) needs a connection of its
own: workers may share one backend, and two blocking pops on one connection would
queue behind each other. Connections are kept between waits; one whose wait did not
end normally is closed, since its pop may still be blocking in Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from corral.backends.redis.mux import Link, open_link
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["STOP_GIVE_UP", "WaitLinks", "end_on_stop", "retrieved"]

STOP_GIVE_UP = 5.0  # seconds a stopping worker waits for Redis to end its blocking wait


def retrieved(future: asyncio.Future[Any]) -> None:
    """Done callback that reads a future's exception (no "never retrieved" warning)."""
    if not future.cancelled():
        future.exception()


class WaitLinks:
    """The connections of one backend's blocking waits: one per concurrent wait."""

    def __init__(self) -> None:
        self._all: set[Link] = set()
        self._idle: list[Link] = []
        self._closes = 0  # a link opened across a close() is not kept

    async def take(self, client: Redis) -> Link | None:
        """An idle link, or a new connection of ``client``'s pool (None when this
        redis-py hides its socket)."""
        while self._idle:
            idle = self._idle.pop()
            if idle.broken is None:
                return idle
            self._all.discard(idle)
        closes = self._closes
        link = await open_link(client)
        if link is not None:
            if closes != self._closes:
                link.close()
                raise RedisConnectionError("the client was closed")
            self._all.add(link)
        return link

    def put(self, link: Link, claimed: asyncio.Future[Any]) -> None:
        """Keep a link for the next wait if its wait ended (``claimed`` done)."""
        if link.broken is None and claimed.done() and link in self._all:
            self._idle.append(link)
        else:
            link.close()
            self._all.discard(link)

    def leave(self, keep: tuple[str, int], error: Exception) -> None:
        """Close the links to any server but ``keep`` (their waits fail with
        ``error``): it is the only one to wait on now."""
        for link in [link for link in self._all if link.peer != keep]:
            link.close(error)
            self._all.discard(link)
        self._idle = [link for link in self._idle if link in self._all]

    def close(self) -> None:
        self._closes += 1
        for link in self._all:
            link.close()
        self._all.clear()
        self._idle.clear()


def end_on_stop(
    stop: asyncio.Event,
    link: Link,
    claimed: asyncio.Future[Any],
    wake: Callable[[], Awaitable[None]],
) -> asyncio.Future[Any]:
    """Watch ``stop`` during a wait: once set, ``wake()`` our own pop so the wait ends
    now, and if Redis does not answer within STOP_GIVE_UP, close the link (whatever
    the claim leased expires). Returns the watcher: cancel it when the wait is over."""

    def stopped(watcher: asyncio.Future[Any]) -> None:
        if watcher.cancelled() or claimed.done():
            return

        def give_up() -> None:
            if not claimed.done():
                link.close()

        asyncio.ensure_future(wake()).add_done_callback(retrieved)
        timer = asyncio.get_running_loop().call_later(STOP_GIVE_UP, give_up)
        claimed.add_done_callback(lambda _: timer.cancel())

    watcher = asyncio.ensure_future(stop.wait())
    watcher.add_done_callback(stopped)
    return watcher
