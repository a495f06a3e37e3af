"""What process isolation costs per job: a no-op task run in-process, in a reused child
process, and in a fresh child per job (``max_tasks_per_child=1``).

    .venv/bin/python bench/isolation.py [--jobs 300] [--runs 3] [--url sqlite:///...]

A real in-process worker (concurrency 1, so the figure is the per-job latency the
isolation adds, not a throughput) drains ``--jobs`` jobs of a sync no-op task from a
fresh store (enqueue excluded); best of ``--runs``, in ms of wall time per job. The
first child (and multiprocessing's fork server) is started before the clock runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from corral import Corral
from corral.worker import Worker

MODES = {
    "in-process": {},
    "isolated, reused child": {"isolation": "process"},
    "isolated, fresh child per job": {"isolation": "process", "max_tasks_per_child": 1},
}


def noop() -> None:
    return None


async def drain(url: str, mode: dict[str, Any], jobs: int) -> float:
    """ms of wall time per job for one worker draining ``jobs`` no-op jobs."""
    app = Corral(url)
    task = app.task(name="bench.noop", queue="iso", **mode)(noop)
    try:
        worker = Worker(app, ["iso"], concurrency=1, block=0.05)
        running = asyncio.create_task(worker.run())
        await (await task.enqueue()).result(timeout=30)  # warm: fork server, first child
        created = await task.enqueue_many([() for _ in range(jobs)])
        start = time.perf_counter()
        await created[-1].result(timeout=600)
        elapsed = time.perf_counter() - start
        worker.stop()
        await running
        return elapsed * 1000 / jobs
    finally:
        await app.close()


async def main(args: argparse.Namespace) -> None:
    print(f"{'mode':<32}{'ms/job':>10}   (best of {args.runs}, {args.jobs} jobs)")
    for name, mode in MODES.items():
        best = float("inf")
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                url = args.url or f"sqlite:///{tmp}/bench.db"
                best = min(best, await drain(url, mode, args.jobs))
        print(f"{name:<32}{best:>10.2f}")


if __name__ == "__main__":  # the children re-import this module: keep it guarded
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--url", help="a Redis URL to use instead of a fresh SQLite file")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parser.parse_args()))
