"""Flows: how long starting a fan-in of N children takes, and running it to the end
with one in-process worker (concurrency 50); and a chain of M steps (each waits for
the previous one: the hand-over latency).

    .venv/bin/python bench/flows.py redis|sqlite [--children 1000] [--chain 100]
        [--queues 1] [--small 200] [--redis URL]

``--queues K`` spreads the fan-in's children over K queues (the join in the first),
the multi-queue creation case; ``--small N`` then times starting N flows of three
jobs, one per queue (``a -> b -> c``), one after another: creation cost per flow.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import redis
from harness.redis_server import redis_url

from corral import Corral, JobContext, Retention, chain, chord
from corral.worker import Worker


async def measure(url: str, children: int, steps: int, queues: int = 1, small: int = 0) -> None:
    app = Corral(url, completed=Retention())
    names = ["bench", *(f"bench{n}" for n in range(1, queues))]

    @app.task(name="bench.leaf", queue="bench")
    async def leaf(i: int) -> int:
        return i

    @app.task(name="bench.join", queue="bench")
    async def join(ctx: JobContext) -> int:
        return len(await ctx.dependency_results())

    @app.task(name="bench.step", queue="bench")
    async def step(n: int) -> int:
        return n + 1

    leaves = [leaf.options(queue=names[i % queues]).call(i) for i in range(children)]
    t0 = time.perf_counter()
    run = await app.start_flow(chord(leaves, join.call()))
    started = time.perf_counter() - t0
    worker = Worker(app, names, concurrency=50)
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
    t3 = time.perf_counter()
    for _ in range(small):
        trio = [step.options(queue=names[i % queues]).call() for i in range(3)]
        await app.start_flow(chain(step.options(queue=names[0]).call(0), *trio[1:]))
    per_flow = (time.perf_counter() - t3) / small * 1000 if small else 0.0
    await app.close()
    print(
        f"queues {queues}: fan-in of {children}: start {started * 1000:.0f} ms, "
        f"run {ran * 1000:.0f} ms; chain of {steps}: {chained * 1000:.0f} ms "
        f"({chained / steps * 1000:.1f} ms a step)"
        + (f"; {small} flows of 3 jobs: {per_flow:.2f} ms to start each" if small else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backend", choices=["redis", "sqlite"])
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--queues", type=int, default=1)
    parser.add_argument("--small", type=int, default=0)
    parser.add_argument(
        "--redis", help="a Redis URL to use (flushed!); default: a private redis-server"
    )
    args = parser.parse_args()
    with redis_url(args.redis) as args.redis:
        more = (args.queues, args.small)
        if args.backend == "redis":
            redis.Redis.from_url(args.redis).flushdb()
            asyncio.run(measure(args.redis, args.children, args.chain, *more))
            return
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(
                measure(f"sqlite:///{Path(tmp) / 'b.db'}", args.children, args.chain, *more)
            )


if __name__ == "__main__":
    main()
