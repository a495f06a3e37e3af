"""One in-process worker (concurrency 50) draining no-op async jobs: a quick before/after
check of Corral's own per-job cost, without peers or separate processes.

    .venv/bin/python bench/drain_inprocess.py redis|sqlite [--jobs 5000] [--runs 3]
        [--body noop|incr] [--prefetch N] [--freeze] [--kept N]
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python bench/drain_inprocess.py redis

Prints the best jobs/s of ``--runs`` and the process's CPU µs per job (the jobs are
enqueued first, in batches of 1000; the drain ends when the worker has recorded them
all). ``--body incr``: one ``INCR`` through a plain ``redis.asyncio.Redis`` (the
benchmark's headline body; Redis only). ``--prefetch N`` sets the worker's prefetch
(default: its own). ``--freeze`` freezes the start-up heap as ``corral worker`` does.
``--kept N`` keeps the last N completed jobs (the default app keeps 1,000), so each
completion also deletes the job N back, as in the benchmark's runs.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import redis
from harness.redis_server import redis_url
from redis.asyncio import Redis

from corral import Corral, Retention
from corral.cli.heap import settle_heap
from corral.worker import Worker


async def drain(url: str, jobs: int, args: argparse.Namespace) -> tuple[float, float]:
    app = Corral(url, completed=Retention(count=args.kept))
    client = Redis.from_url(args.redis) if args.body == "incr" else None

    @app.task(name="bench.noop", queue="bench")
    async def noop(i: int) -> int:
        if client is not None:
            await client.incr("bench:count")
        return i

    for start in range(0, jobs, 1000):
        await noop.enqueue_many([(i,) for i in range(start, min(jobs, start + 1000))])
    if args.freeze:
        settle_heap()
    worker = Worker(app, ["bench"], concurrency=50, prefetch=args.prefetch)
    cpu = time.process_time()
    started = time.perf_counter()
    running = asyncio.create_task(worker.run())
    while worker.processed < jobs:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    worker.stop()
    await running
    await app.close()
    if client is not None:
        await client.aclose()
    return jobs / elapsed, cpu * 1e6 / jobs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backend", choices=["redis", "sqlite"])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--redis", help="a Redis URL to use (flushed!); default: a private redis-server"
    )
    parser.add_argument("--body", choices=["noop", "incr"], default="noop")
    parser.add_argument("--prefetch", type=int, default=None)
    parser.add_argument("--freeze", action="store_true")
    parser.add_argument("--kept", type=int, default=None, help="completed jobs kept (all)")
    args = parser.parse_args()
    with redis_url(args.redis) as args.redis:
        best, best_cpu = 0.0, float("inf")
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                if args.backend == "redis":
                    redis.Redis.from_url(args.redis).flushdb()
                    url = args.redis
                else:
                    url = f"sqlite:///{Path(tmp) / 'drain.db'}"
                rate, cpu = asyncio.run(drain(url, args.jobs, args))
                best, best_cpu = max(best, rate), min(best_cpu, cpu)
        print(
            f"{args.backend} {best:,.0f} jobs/s, {best_cpu:.0f} µs CPU per job (best of {args.runs})"
        )


if __name__ == "__main__":
    main()
