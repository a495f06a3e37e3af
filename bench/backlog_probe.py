"""Where does Redis's cost per job grow with the backlog? A longer look than scenario f.

    bench/.venv/bin/python bench/backlog_probe.py [BACKLOG ...]    # default: 0 1000000

For each backlog size it starts a fresh redis-server, queues BACKLOG + 27,000 bench jobs,
runs one ``corral worker -c 50`` and times the jobs from the LO-th to the HI-th
completion (env LO/HI, default 2,000 and 22,000): past the worker's start-up, with the
backlog still waiting. It prints the rate, Redis's CPU per job and, per Redis command
called inside the scripts, its calls and microseconds per job. A diagnostic, not part
of the harness's results.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
os.environ.setdefault("BENCH_REDIS_URL", "redis://unused")

from harness.redis_server import OwnRedis  # noqa: E402


def redis_cpu(r: Any) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"] + info["used_cpu_sys"])


def probe(url: str, backlog: int, lo: int, hi: int) -> None:
    from systems.corral_redis import make_app

    r = redis.Redis.from_url(url)
    r.flushall()
    app, tasks = make_app(url)
    incr = tasks["incr"]

    async def fill() -> None:
        total = hi + 5_000 + backlog
        for start in range(0, total, 50_000):
            await incr.enqueue_many([(i,) for i in range(start, min(start + 50_000, total))])
        await app.close()

    asyncio.run(fill())
    time.sleep(1)
    env = dict(os.environ, CORRAL_URL=url, BENCH_REDIS_URL=url, PYTHONPATH=str(BENCH))
    command = [str(Path(sys.executable).with_name("corral")), "worker", "systems.corral_redis:app"]
    worker = subprocess.Popen(
        [*command, "-c", "50", "-q", "bench", "--log-level", "warning"], env=env, cwd=BENCH
    )
    try:
        while int(r.get("bench:count") or 0) < lo:
            time.sleep(0.001)
        r.config_resetstat()
        t0, c0, n0 = time.perf_counter(), redis_cpu(r), int(r.get("bench:count") or 0)
        while int(r.get("bench:count") or 0) < hi:
            time.sleep(0.002)
        t1, c1, n1 = time.perf_counter(), redis_cpu(r), int(r.get("bench:count") or 0)
    finally:
        worker.terminate()
        worker.wait()
    n = n1 - n0
    print(
        f"backlog {backlog:>9,}: {n / (t1 - t0):,.0f} jobs/s, Redis {(c1 - c0) / n * 1e6:.1f} µs/job"
    )
    stats = r.info("commandstats")
    for name, stat in sorted(stats.items(), key=lambda kv: -kv[1]["usec"])[:8]:
        print(
            f"    {name[8:]:<18} {stat['calls'] / n:6.3f} calls/job {stat['usec'] / n:6.2f} µs/job"
        )
    r.close()


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [0, 1_000_000]
    lo, hi = int(os.environ.get("LO", "2000")), int(os.environ.get("HI", "22000"))
    server = OwnRedis().start()
    try:
        for size in sizes:
            probe(server.url, size, lo, hi)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
