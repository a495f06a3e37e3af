"""Flows: how long starting a fan-in of N children takes, and running it to the end
with one in-process worker (concurrency 50); and a chain of M steps (each waits for
the previous one: the hand-over latency).

    .venv/bin/python bench/flows.py redis|sqlite [--children 1000] [--chain 100]
        [--redis redis://127.0.0.1:6379/14]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import redis

from corral import Corral, JobContext, Retention, chain, chord
from corral.worker import Worker


async def measure(url: str, children: int, steps: int) -> None:
    app = Corral(url, completed=Retention())

    @app.task(name="bench.leaf", queue="bench")
    async def leaf(i: int) -> int:
        return i

    @app.task(name="bench.join", queue="bench")
    async def join(ctx: JobContext) -> int:
        return len(await ctx.dependency_results())

    @app.task(name="bench.step", queue="bench")
    async def step(n: int) -> int:
        return n + 1

    t0 = time.perf_counter()
    run = await app.start_flow(chord([leaf.call(i) for i in range(children)], join.call()))
    started = time.perf_counter() - t0
    worker = Worker(app, ["bench"], concurrency=50)
    running = asyncio.create_task(worker.run())
    t1 = time.perf_counter()
    assert await run.wait(timeout=120) == "completed"
    ran = time.perf_counter() - t1
    assert run.results()["join"] == children
    t2 = time.perf_counter()
    run = await app.start_flow(chain(step.call(0), *(step.call() for _ in range(steps - 1))))
    assert await run.wait(timeout=120) == "completed"
    chained = time.perf_counter() - t2
    worker.stop()
    await running
    await app.close()
    print(
        f"fan-in of {children}: start {started * 1000:.0f} ms, run {ran * 1000:.0f} ms; "
        f"chain of {steps}: {chained * 1000:.0f} ms ({chained / steps * 1000:.1f} ms a step)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backend", choices=["redis", "sqlite"])
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    if args.backend == "redis":
        redis.Redis.from_url(args.redis).flushdb()
        asyncio.run(measure(args.redis, args.children, args.chain))
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(measure(f"sqlite:///{Path(tmp) / 'b.db'}", args.children, args.chain))


if __name__ == "__main__":
    main()
