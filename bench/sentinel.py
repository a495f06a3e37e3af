"""Redis through Sentinel, on a loopback group (chaos/topology.py: a primary, a replica,
three sentinels, down-after 1000 ms): what a failover costs and what Sentinel costs.

    PYTHONPATH=src:. .venv/bin/python bench/sentinel.py [--enqueues 5000] [--failovers 3]

- enqueue throughput: ``--concurrency`` producers awaiting single-job enqueues, through
  the ``redis+sentinel://`` URL and through ``redis://`` to the same primary (best of
  ``--runs``, alternating);
- failover: an in-process worker drains a queue; the primary is SIGKILLed and a job
  enqueued at once; printed is the time from the SIGKILL to that job's result (which
  needs the failover, the producer's reconnect, the worker's wait on the new primary
  and the result through the pub/sub hub). The old primary is restarted (it rejoins as
  a replica) before the next round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import redis
from chaos.harness import wait_until
from chaos.topology import SentinelProcs

from corral import Corral, Retention
from corral.worker import Worker


async def enqueue_rate(url: str, enqueues: int, concurrency: int) -> float:
    app = Corral(url, completed=Retention())

    @app.task(name="bench.noop", queue="bench")
    async def noop(i: int) -> int:
        return i

    await noop.enqueue(-1)  # connected, scripts loaded
    per_task = enqueues // concurrency

    async def produce(start: int) -> None:
        for i in range(start, start + per_task):
            await noop.enqueue(i)

    started = time.perf_counter()
    await asyncio.gather(*(produce(n * per_task) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    await app.close()
    return per_task * concurrency / elapsed


def _replica(port: int) -> bool:
    try:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
            info = client.info("replication")
    except redis.RedisError:
        return False
    return info["role"] == "slave" and info["master_link_status"] == "up"


async def failover_round(group: SentinelProcs) -> float:
    app = Corral(group.url, reconnect_timeout=60)

    @app.task(name="bench.echo", queue="bench")
    async def echo(i: int) -> int:
        return i

    worker = Worker(app, ["bench"], concurrency=10, block=1.0)
    running = asyncio.create_task(worker.run())
    try:
        assert await (await echo.enqueue(0)).result(timeout=10) == 0
        old = group.primary_proc()
        killed = time.perf_counter()
        await asyncio.to_thread(old.kill)
        assert await (await echo.enqueue(1)).result(timeout=60) == 1
        resumed = time.perf_counter() - killed
    finally:
        worker.stop()
        await running
        await app.close()
    await asyncio.to_thread(old.start)
    if not await asyncio.to_thread(wait_until, lambda: _replica(old.port), 60):
        raise RuntimeError("the old primary did not rejoin as a replica")
    return resumed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enqueues", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--failovers", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SentinelProcs(Path(tmp)) as group:
        primary = f"redis://127.0.0.1:{group.current_primary()}/0"
        rates: dict[str, list[float]] = {"redis+sentinel://": [], "redis://": []}
        for _ in range(args.runs):
            for name, url in (("redis+sentinel://", group.url), ("redis://", primary)):
                redis.Redis.from_url(primary).flushall()
                rate = asyncio.run(enqueue_rate(url, args.enqueues, args.concurrency))
                rates[name].append(rate)
        for name, values in rates.items():
            print(
                f"enqueue {name:<18} best {max(values):7.0f}/s  "
                f"runs {', '.join(f'{v:.0f}' for v in values)}"
            )
        redis.Redis.from_url(primary).flushall()
        times = [asyncio.run(failover_round(group)) for _ in range(args.failovers)]
        print(
            f"SIGKILL of the primary -> first job's result on the new one: "
            f"median {statistics.median(times):.2f} s, "
            f"runs {', '.join(f'{t:.2f}' for t in times)}"
        )


if __name__ == "__main__":
    main()
