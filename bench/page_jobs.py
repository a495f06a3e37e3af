"""Cost of paging and searching a big queue through the Queue API: one queue holding
--jobs waiting jobs (default 1,000,000) and --finished completed ones.

    .venv/bin/python bench/page_jobs.py [--backend redis|sqlite|both] [--jobs 1000000]
        [--finished 10000] [--scan 5000] [--repeat 20]

Times, p50 of --repeat calls: ``Queue.page`` (50 jobs) at the head of the waiting line
and 20 pages deep (after following next_cursor), the newest completed page, and
``Queue.search`` reading --scan jobs of the line with a filter that matches none (the
whole bound is read). Loads the store with bulk enqueues straight to the backend
(5,000 jobs a call) and claim + complete for the finished ones. Starts its own
redis-server; prints a table and writes nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer  # noqa: E402

from corral import Corral  # noqa: E402
from corral.backends.base import KEEP_ALL, Backend, Completion, NewJob  # noqa: E402
from corral.search import JobFilter  # noqa: E402

BIG = "big"


async def _fill(backend: Backend, jobs: int, finished: int) -> float:
    started = time.perf_counter()
    total = jobs + finished
    for start in range(0, total, 5000):
        batch = [
            NewJob(f"j{i:07d}", "bench.send", b'[["cust-%d@example.com"],{}]' % (i % 997))
            for i in range(start, min(total, start + 5000))
        ]
        await backend.enqueue(BIG, batch)
    done = 0
    while done < finished:
        claimed, _ = await backend.claim(BIG, min(500, finished - done), 60_000, "bench:1:aa")
        await backend.complete(BIG, [Completion(j.id, j.token, b"1") for j in claimed], KEEP_ALL)
        done += len(claimed)
    return time.perf_counter() - started


async def _p50_ms(call: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    app = Corral(url)
    try:
        loaded = await _fill(await app.backend(), args.jobs, args.finished)
        queue = app.queue(BIG)
        cursor = None
        for _ in range(20):
            cursor = (await queue.page("waiting", cursor=cursor)).next_cursor
        nothing = JobFilter("waiting", text="no-such-customer")
        searched = await queue.search(nothing, scan=args.scan)
        assert searched.scanned == min(args.scan, args.jobs) and not searched.jobs
        return {
            "load s": loaded,
            "page 1": await _p50_ms(lambda: queue.page("waiting"), args.repeat),
            "page 21": await _p50_ms(lambda: queue.page("waiting", cursor=cursor), args.repeat),
            "completed": await _p50_ms(lambda: queue.page("completed"), args.repeat),
            "search": await _p50_ms(lambda: queue.search(nothing, scan=args.scan), args.repeat),
        }
    finally:
        await app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["redis", "sqlite", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--finished", type=int, default=10_000)
    parser.add_argument("--scan", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    names = ["redis", "sqlite"] if args.backend == "both" else [args.backend]
    print(f"{args.jobs:,} waiting + {args.finished:,} completed jobs; p50 of {args.repeat}")
    print(
        f"{'backend':8} {'load':>7} {'page 1':>9} {'page 21':>9} {'completed':>10} "
        f"{'search ' + format(args.scan, ','):>13}"
    )
    for name in names:
        if name == "redis":
            server = RedisServer().start()
            try:
                r = asyncio.run(measure(server.url, args))
            finally:
                server.stop()
        else:
            with tempfile.TemporaryDirectory() as tmp:
                r = asyncio.run(measure(f"sqlite:///{tmp}/bench.db", args))
        print(
            f"{name:8} {r['load s']:5.0f} s {r['page 1']:6.2f} ms {r['page 21']:6.2f} ms "
            f"{r['completed']:7.2f} ms {r['search']:10.1f} ms"
        )


if __name__ == "__main__":
    main()
