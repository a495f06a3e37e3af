"""Cost of asking why a job has not started (``Backend.wait_facts``) behind a big
backlog, and the claim rate beside it (claim 50, complete them, again).

    .venv/bin/python bench/wait_facts.py [--backend redis|sqlite|both] [--jobs 1000000]
        [--drain 30000] [--repeat 20]

Enqueues --jobs plain jobs in one queue and times wait_facts on the last one (the
worst case: the place in line is counted up to 100,000) and on the first, p50 of
--repeat calls; then drains --drain jobs of another queue through claim + complete.
Starts its own redis-server; prints a table and writes nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer  # noqa: E402

from corral.backends.base import KEEP_ALL, Backend, Completion, NewJob  # noqa: E402
from corral.backends.redis import RedisBackend  # noqa: E402
from corral.backends.sqlite import SQLiteBackend  # noqa: E402


async def _fill(backend: Backend, queue: str, n: int) -> None:
    for start in range(0, n, 5000):
        ids = range(start, min(n, start + 5000))
        await backend.enqueue(queue, [NewJob(f"j{i}", "bench.x", b"[[],{}]") for i in ids])


async def _p50_ms(backend: Backend, queue: str, job_id: str, repeat: int) -> float:
    await backend.wait_facts(queue, job_id)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await backend.wait_facts(queue, job_id)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def _drain_rate(backend: Backend, n: int) -> float:
    await _fill(backend, "drain", n)
    start, done = time.perf_counter(), 0
    while done < n:
        jobs, _ = await backend.claim("drain", 50, 30_000, "bench:1:aa")
        await backend.complete("drain", [Completion(j.id, j.token, b"1") for j in jobs], KEEP_ALL)
        done += len(jobs)
    return n / (time.perf_counter() - start)


async def measure(backend: Backend, args: argparse.Namespace) -> tuple[float, float, float]:
    await backend.connect()
    try:
        await _fill(backend, "big", args.jobs)
        last = await _p50_ms(backend, "big", f"j{args.jobs - 1}", args.repeat)
        first = await _p50_ms(backend, "big", "j0", args.repeat)
        return last, first, await _drain_rate(backend, args.drain)
    finally:
        await backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["redis", "sqlite", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--drain", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    names = ["redis", "sqlite"] if args.backend == "both" else [args.backend]
    print(f"{'backend':8} {'facts, last job':>16} {'facts, first job':>17} {'drain':>14}")
    for name in names:
        if name == "redis":
            server = RedisServer().start()
            try:
                result = asyncio.run(measure(RedisBackend(server.url), args))
            finally:
                server.stop()
        else:
            with tempfile.TemporaryDirectory() as tmp:
                result = asyncio.run(measure(SQLiteBackend(f"sqlite:///{tmp}/bench.db"), args))
        last, first, rate = result
        print(f"{name:8} {last:13.2f} ms {first:14.2f} ms {rate:9,.0f} jobs/s")


if __name__ == "__main__":
    main()
