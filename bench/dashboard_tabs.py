"""What open dashboard tabs cost a real ``corral serve``: GET / latency with and without
--tabs live streams (default 500), the server's RSS, and the number of backend event
subscriptions it holds (must be 1 however many tabs).

    .venv/bin/python bench/dashboard_tabs.py [--backend redis|sqlite|both] [--tabs 500]
        [--requests 200] [--queues 20] [--rate 20]

A producer enqueues --rate jobs a second spread over --queues queues for the whole run
(no worker: the counts keep changing, so every tab gets a ``counts`` event each second).
Each tab is a raw loopback connection reading ``GET /live`` (what EventSource does); GET /
is timed --requests times, one after another, before the tabs open and while they are
open. Subscriptions are read from the server's /metrics (``corral_event_subscriptions``)
and, on Redis, from the server itself (``PUBSUB NUMPAT`` and the clients with a pattern
subscription in ``CLIENT LIST``). It prints a table and writes nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve_process import served  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else float("nan")


class Tab:
    """One live stream on a raw connection, counting the events it gets."""

    def __init__(self) -> None:
        self.counts = 0
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer = writer
        writer.write(b"GET /live HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
        await writer.drain()
        self.task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                if line.startswith(b"event: counts"):
                    self.counts += 1

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.close()


async def produce(url: str, queues: int, rate: float, stop: asyncio.Event) -> None:
    os.environ["CORRAL_URL"] = url
    from corral import Corral

    app = Corral(url)
    try:
        n = 0
        while not stop.is_set():
            await app.enqueue("bench.noop", [n], queue=f"q{n % queues:02d}")
            n += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1 / rate):
                    await stop.wait()
    finally:
        await app.close()


async def time_overview(http: httpx.AsyncClient, requests: int) -> tuple[float, float]:
    """(wall p50, server p50) of GET / in ms."""
    wall, server = [], []
    for _ in range(requests):
        began = time.perf_counter()
        answer = await http.get("/")
        wall.append((time.perf_counter() - began) * 1000)
        answer.raise_for_status()
        found = re.search(r"dur=([0-9.]+)", answer.headers.get("server-timing", ""))
        server.append(float(found.group(1)) if found else float("nan"))
    return statistics.median(wall), statistics.median(server)


async def gauges(http: httpx.AsyncClient) -> dict[str, float]:
    text = (await http.get("/metrics")).text
    found = re.findall(
        r"^(corral_dashboard_live_tabs|corral_event_subscriptions) (\S+)$", text, re.M
    )
    return {name: float(value) for name, value in found}


async def redis_subscriptions(url: str | None) -> str:
    if url is None:
        return "-"
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        numpat = int(await client.pubsub_numpat())
        clients = sum(1 for c in await client.client_list() if int(c.get("psub", 0)) > 0)
    finally:
        await client.aclose()
    return f"NUMPAT {numpat}, {clients} client"


async def measure(
    base: str, port: int, pid: int, url: str, redis_url: str | None, args: argparse.Namespace
) -> list[tuple[str, str]]:
    stop = asyncio.Event()
    producer = asyncio.create_task(produce(url, args.queues, args.rate, stop))
    rows: list[tuple[str, str]] = []
    limits = httpx.Limits(max_connections=4)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        await asyncio.sleep(2)  # the queues exist, the server is warm
        await time_overview(http, 10)
        wall, server = await time_overview(http, args.requests)
        g = await gauges(http)
        rows.append(("GET / p50, no tab", f"{wall:.1f} ms (server {server:.1f} ms)"))
        rows.append(("RSS, no tab", f"{rss_mib(pid):.0f} MiB"))
        rows.append(("subscriptions, no tab", f"{g.get('corral_event_subscriptions', 0):.0f}"))

        tabs = [Tab() for _ in range(args.tabs)]
        began = time.perf_counter()
        for tab in tabs:
            await tab.open(port)
        deadline = time.monotonic() + 60
        while (await gauges(http)).get("corral_dashboard_live_tabs", 0) < args.tabs:
            if time.monotonic() > deadline:
                raise RuntimeError("the tabs did not all open within 60 s")
            await asyncio.sleep(0.2)
        opened = time.perf_counter() - began
        await asyncio.sleep(2)
        counted = sum(t.counts for t in tabs)
        window = time.perf_counter()
        wall, server = await time_overview(http, args.requests)
        await asyncio.sleep(max(0.0, 5.0 - (time.perf_counter() - window)))
        seconds = time.perf_counter() - window
        per_tab = (sum(t.counts for t in tabs) - counted) / len(tabs) / seconds
        g = await gauges(http)
        rows.append((f"tabs opened ({args.tabs})", f"in {opened:.1f} s"))
        rows.append((f"GET / p50, {args.tabs} tabs", f"{wall:.1f} ms (server {server:.1f} ms)"))
        rows.append((f"RSS, {args.tabs} tabs", f"{rss_mib(pid):.0f} MiB"))
        rows.append(
            (
                f"subscriptions, {args.tabs} tabs",
                f"{g.get('corral_event_subscriptions', 0):.0f} "
                f"(Redis: {await redis_subscriptions(redis_url)})",
            )
        )
        rows.append(("counts events per tab per second", f"{per_tab:.2f}"))
        for tab in tabs:
            await tab.close()
        deadline = time.monotonic() + 30
        while (g := await gauges(http)).get("corral_dashboard_live_tabs", 1) > 0:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        g = await gauges(http)
        rows.append(
            (
                "after closing them: tabs, subscriptions",
                f"{g.get('corral_dashboard_live_tabs', 0):.0f}, "
                f"{g.get('corral_event_subscriptions', 0):.0f} "
                f"(Redis: {await redis_subscriptions(redis_url)})",
            )
        )
    stop.set()
    await producer
    return rows


def run(backend: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisServer().__enter__() if backend == "redis" else None
        try:
            url = redis_server.url if redis_server else f"sqlite:///{tmp}/tabs.db"
            with served(url, stop_timeout=20) as (base, serve):
                port = int(base.rsplit(":", 1)[1])
                redis_url = redis_server.url if redis_server else None
                rows = asyncio.run(measure(base, port, serve.pid, url, redis_url, args))
        finally:
            if redis_server:
                redis_server.__exit__(None, None, None)
    print(f"\n{backend}: {args.queues} queues, {args.rate:g} enqueues/s, {args.tabs} tabs")
    for label, value in rows:
        print(f"  {label:42} {value}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["redis", "sqlite", "both"], default="both")
    parser.add_argument("--tabs", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0)
    args: Any = parser.parse_args()
    for backend in ("redis", "sqlite") if args.backend == "both" else (args.backend,):
        run(backend, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
