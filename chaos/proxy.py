"""A loopback TCP proxy that injects network faults between workers and Redis.

It runs its own event loop in a thread; the harness steers it with thread-safe calls:

- ``latency(low, high)``: every chunk is delivered ``low..high`` seconds late (order kept);
- ``drop()``: reset every connection and every new one until ``heal()``;
- ``half_open()``: stop forwarding without closing anything (bytes wait, unread, in the
  kernel buffers) until ``heal()``;
- ``cut_next_reply()``: the next bytes Redis sends on any connection are dropped and that
  connection reset (Redis ran the command; its reply is lost); then forward normally;
- ``heal(stale=False)``: forward normally again. ``stale=True`` leaves connections that
  were half-open stuck for good (the peer vanished without a reset); only connections
  opened afterwards work.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Proxy"]


class _Link:
    """One proxied connection: two pumps (client->server, server->client)."""

    def __init__(self, proxy: Proxy, client: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.writers = [client]
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.stuck = False

    def abort(self) -> None:
        for writer in self.writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()


class Proxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.target_port = host, target_port
        self.port = 0
        self._latency = (0.0, 0.0)
        self._mode = "ok"  # ok | drop | half
        self._cut_next = False
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.connections = 0

    # -- control (from any thread) ----------------------------------------------------

    def start(self) -> Proxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def _call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def latency(self, low: float, high: float | None = None) -> None:
        self._latency = (low, low if high is None else high)

    def drop(self) -> None:
        def go() -> None:
            self._mode = "drop"
            for link in list(self._links):
                link.abort()

        self._call(go)

    def cut_next_reply(self) -> None:
        def go() -> None:
            self._cut_next = True

        self._call(go)

    def half_open(self) -> None:
        def go() -> None:
            self._mode = "half"
            for link in self._links:
                link.flowing.clear()
                link.stuck = True

        self._call(go)

    def heal(self, *, stale: bool = False) -> None:
        def go() -> None:
            self._mode = "ok"
            for link in self._links:
                if not (stale and link.stuck):
                    link.stuck = False
                    link.flowing.set()

        self._call(go)

    def close(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for link in list(self._links):
                link.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # -- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, self.host, 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A cancelled handler task would be reported by asyncio's stream callback.
        with contextlib.suppress(asyncio.CancelledError):
            await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        link = _Link(self, writer)
        if self._mode == "drop":
            link.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            link.abort()
            return
        link.writers.append(up_writer)
        if self._mode == "half":  # new connections are half-open too
            link.flowing.clear()
            link.stuck = True
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pump(link, reader, up_writer),
                self._pump(link, up_reader, writer, replies=True),
            )
        finally:
            self._links.discard(link)
            link.abort()

    async def _pump(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        replies: bool = False,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(link, queue, writer))
        last_due = 0.0
        try:
            while True:
                await link.flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                if replies and self._cut_next:
                    self._cut_next = False
                    link.abort()
                    break
                await link.flowing.wait()  # read while flowing, then half-opened: hold it
                low, high = self._latency
                due = self._loop.time() + random.uniform(low, high)
                last_due = max(last_due, due)  # keep the byte order
                queue.put_nowait((last_due, data))
        except (ConnectionError, OSError):
            pass
        finally:
            await queue.put((0.0, b""))
            with contextlib.suppress(Exception):
                await sender
            link.abort()

    async def _send(
        self, link: _Link, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        while True:
            due, data = await queue.get()
            if not data:
                return
            delay = due - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await link.flowing.wait()
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                return
