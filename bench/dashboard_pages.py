"""Server time of each dashboard page with a big store: one queue holding --jobs jobs
(default 1,000,000 waiting, plus --finished completed and failed ones) and --queues
queues in all (default 200).

    .venv/bin/python bench/dashboard_pages.py [--backend redis|sqlite|both]
        [--jobs 1000000] [--finished 20000] [--queues 200] [--repeat 15]

Loads the store through Corral's own bulk enqueue (and a worker for the finished jobs),
starts ``corral serve`` as a subprocess, and requests every page ``--repeat`` times.
The figure is the ``Server-Timing: app`` header the dashboard sets (time to the first
byte inside the server); ``wall`` is the client's whole request on loopback. It prints
a table and writes nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
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

BIG = "big"
CHUNK = 2000


async def load(url: str, jobs: int, finished: int, queues: int) -> None:
    """Fill the store: finished jobs first (a worker runs them), then the waiting ones."""
    import importlib

    from corral.worker import Worker

    logging.getLogger("corral").setLevel(logging.ERROR)
    logging.getLogger("corral.job").setLevel(logging.CRITICAL)  # a line per failed job otherwise
    os.environ["CORRAL_URL"] = url
    import bench.dashboard_app as module

    module = importlib.reload(module)  # its app takes this run's URL
    app, noop, fail = module.app, module.noop, module.fail
    started = time.perf_counter()
    try:
        if finished:
            calls = [
                (fail if i % 10 == 0 else noop).call(i, customer=f"cust-{i % 997}")
                for i in range(finished)
            ]
            for i in range(0, len(calls), CHUNK):
                await app.enqueue_many(calls[i : i + CHUNK])
            worker = Worker(app, [BIG], concurrency=50)
            running = asyncio.create_task(worker.run())
            while (await app.queue(BIG).counts())["waiting"]:
                await asyncio.sleep(0.5)
            worker.stop()
            await running
        for i in range(0, jobs, CHUNK):
            await app.enqueue_many(
                [noop.call(n, customer=f"cust-{n % 997}") for n in range(i, min(jobs, i + CHUNK))]
            )
        for q in range(1, queues):
            other = noop.options(queue=f"q{q:03d}")
            await app.enqueue_many([other.call(n) for n in range(5)])
        print(f"  loaded in {time.perf_counter() - started:.0f} s: {await app.queue(BIG).counts()}")
    finally:
        await app.close()


def pages(client: httpx.Client) -> list[tuple[str, str]]:
    """The pages to time; deep pages follow the dashboard's own Next links."""
    paths = [
        ("overview (all queues)", "/"),
        ("queue: waiting, page 1", f"/queues/{BIG}"),
        ("queue: completed, page 1", f"/queues/{BIG}?state=completed"),
        ("queue: failed, page 1", f"/queues/{BIG}?state=failed"),
    ]
    deep = f"/queues/{BIG}"
    for _ in range(20):  # follow "next" 20 times
        html = client.get(deep).text
        found = re.search(
            r'href="([^"]*cursor=[^"]*)"[^>]*rel="next"|rel="next"[^>]*href="([^"]*)"', html
        )
        if not found:
            break
        deep = (found.group(1) or found.group(2)).replace("&amp;", "&")
    paths.append(("queue: waiting, page 21", deep))
    paths += [
        ("search: argument text (bounded scan)", f"/queues/{BIG}?state=completed&text=cust-42"),
        ("search: error text", f"/queues/{BIG}?state=failed&error=502"),
        ("workers", "/workers"),
        ("schedules", "/schedules"),
    ]
    listing = client.get(f"/api/v1/queues/{BIG}/jobs", params={"state": "failed", "limit": 1})
    failed = listing.json()["jobs"]
    if failed:
        paths.append(("job detail (failed)", f"/queues/{BIG}/jobs/{failed[0]['id']}"))
    return paths


def measure(base: str, repeat: int) -> list[tuple[str, int, float, float, float]]:
    rows = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for label, path in pages(client):
            server, wall, status = [], [], 0
            for _ in range(repeat):
                began = time.perf_counter()
                answer = client.get(path)
                wall.append((time.perf_counter() - began) * 1000)
                status = answer.status_code
                timing = answer.headers.get("server-timing", "")
                found = re.search(r"dur=([0-9.]+)", timing)
                server.append(float(found.group(1)) if found else float("nan"))
            server.sort()
            rows.append(
                (
                    label,
                    status,
                    statistics.median(server),
                    server[max(0, int(len(server) * 0.95) - 1)],
                    statistics.median(wall),
                )
            )
    return rows


def run(backend: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisServer().__enter__() if backend == "redis" else None
        try:
            url = redis_server.url if redis_server else f"sqlite:///{tmp}/dash.db"
            print(f"{backend}: loading {args.jobs:,} waiting + {args.finished:,} finished jobs")
            asyncio.run(load(url, args.jobs, args.finished, args.queues))
            with served(url) as (base, _serve):
                rows = measure(base, args.repeat)
        finally:
            if redis_server:
                redis_server.__exit__(None, None, None)
    print(f"\n{backend}: {args.jobs:,} jobs waiting in '{BIG}', {args.queues} queues")
    print(f"{'page':40} {'status':>6} {'server p50':>11} {'p95':>8} {'wall p50':>9}")
    for label, status, p50, p95, wall in rows:
        print(f"{label:40} {status:>6} {p50:>9.1f}ms {p95:>6.1f}ms {wall:>7.1f}ms")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["redis", "sqlite", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--finished", type=int, default=20_000)
    parser.add_argument("--queues", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15)
    args: Any = parser.parse_args()
    for backend in ("redis", "sqlite") if args.backend == "both" else (args.backend,):
        run(backend, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
