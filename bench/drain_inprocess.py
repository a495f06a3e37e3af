"""One in-process worker (concurrency 50) draining no-op async jobs: a quick before/after
check of Corral's own per-job cost, without peers or separate processes.

    .venv/bin/python bench/drain_inprocess.py redis|sqlite [--jobs 5000] [--runs 3]
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python bench/drain_inprocess.py redis

Prints the best jobs/s of ``--runs`` (the jobs are enqueued first, in batches of 1000;
every completed job is kept so the count can be read back).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import redis

from corral import Corral, Retention
from corral.worker import Worker


async def drain(url: str, jobs: int) -> float:
    app = Corral(url, completed=Retention())

    @app.task(name="bench.noop", queue="bench")
    async def noop(i: int) -> int:
        return i

    for start in range(0, jobs, 1000):
        await noop.enqueue_many([(i,) for i in range(start, min(jobs, start + 1000))])
    worker = Worker(app, ["bench"], concurrency=50)
    started = time.perf_counter()
    running = asyncio.create_task(worker.run())
    queue = app.queue("bench")
    while (await queue.counts())["completed"] < jobs:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    worker.stop()
    await running
    await app.close()
    return jobs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backend", choices=["redis", "sqlite"])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    best = 0.0
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            if args.backend == "redis":
                redis.Redis.from_url(args.redis).flushdb()
                url = args.redis
            else:
                url = f"sqlite:///{Path(tmp) / 'drain.db'}"
            best = max(best, asyncio.run(drain(url, args.jobs)))
    print(f"{args.backend} {best:,.0f} jobs/s")


if __name__ == "__main__":
    main()
