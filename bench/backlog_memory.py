"""Redis memory per waiting job, Corral vs Node BullMQ, at one backlog size.

    bench/.venv/bin/python bench/backlog_memory.py [--jobs 100000] [--systems corral,bullmq]

Each system gets a fresh redis-server of its own (a free loopback port, no
persistence). The bench's headline job is queued the way scenario (b) queues it:
Corral's ``incr.enqueue_many([(i,) ...])`` in calls of 1,000 jobs, BullMQ's
``Queue.addBulk([{name: "incr", data: {i}} ...])`` in calls of 1,000 (``producer.mjs
fill``, default job options). A first small fill loads each system's scripts, then
``FLUSHALL`` (the script cache stays), so the figure is only the jobs:
``used_memory`` after the fill minus before, divided by N. Memory is deterministic:
no timing is involved, one run is enough.

Beside it, from one waiting job in the middle of the backlog: the keys per job, its
hash's encoding, fields and ``MEMORY USAGE``, and the waiting line's bytes per entry.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
os.environ.setdefault("BENCH_REDIS_URL", "redis://unused")

from harness.redis_server import OwnRedis  # noqa: E402


def used(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def corral_fill(url: str, n: int) -> None:
    from systems.corral_redis import make_app

    app, tasks = make_app(url)

    async def fill() -> None:
        for start in range(0, n, 1000):
            await tasks["incr"].enqueue_many([(i,) for i in range(start, min(start + 1000, n))])
        await app.close()

    asyncio.run(fill())


def bullmq_fill(url: str, n: int) -> None:
    node = BENCH / "systems" / "bullmq_node" / "producer.mjs"
    env = dict(os.environ, BENCH_REDIS_URL=url)
    subprocess.run(
        ["node", str(node), "fill", str(n)],
        env=env,
        check=True,
        cwd=BENCH,
        stdout=subprocess.DEVNULL,
    )


def describe(r: redis.Redis, n: int) -> dict[str, Any]:
    """Per-key facts: which keys hold how much, and one job hash in detail."""
    sizes: dict[str, list[int]] = {}
    sample = None
    batch: list[bytes] = []

    def flush() -> None:
        nonlocal sample
        pipe = r.pipeline(transaction=False)
        for key in batch:
            pipe.type(key)
            pipe.hexists(key, "data")  # an error reply for a non-hash
            pipe.memory_usage(key, samples=0)
        replies = pipe.execute(raise_on_error=False)
        for i, key in enumerate(batch):
            kind, job, usage = replies[3 * i : 3 * i + 3]
            job = job is True
            if job and sample is None:
                sample = key.decode()
            group = "job hash" if job else f"{key.decode()} ({kind.decode()})"
            sizes.setdefault(group, []).append(int(usage or 0))
        batch.clear()

    for key in r.scan_iter(count=10_000):
        batch.append(key)
        if len(batch) == 5_000:
            flush()
    flush()
    out: dict[str, Any] = {"keys": sum(len(v) for v in sizes.values())}
    out["by key"] = {
        g: (len(v), sum(v) / n) for g, v in sorted(sizes.items(), key=lambda kv: -sum(kv[1]))
    }
    if sample is not None:
        out["sample"] = sample
        out["encoding"] = r.object("encoding", sample)
        out["fields"] = {k.decode(): v.decode() for k, v in r.hgetall(sample).items()}
        out["sample bytes"] = r.memory_usage(sample, samples=0)
    return out


def measure(system: str, n: int) -> None:
    server = OwnRedis().start()
    r = redis.Redis.from_url(server.url)
    fill = corral_fill if system == "corral" else bullmq_fill
    try:
        fill(server.url, 1000)  # loads the scripts (they stay through FLUSHALL)
        r.flushall()
        before = used(r)
        fill(server.url, n)
        after = used(r)
        facts = describe(r, n)
        version = r.info("server")["redis_version"]
    finally:
        r.close()
        server.stop()
    print(
        f"{system}: {(after - before) / n:,.1f} bytes/job (used_memory delta {after - before:,} "
        f"for {n:,} waiting jobs; Redis {version}; {facts['keys']:,} keys)"
    )
    for group, (count, per_job) in list(facts["by key"].items())[:6]:
        print(f"    {group:<40} {count:>8,} key(s)  {per_job:7.1f} bytes/job (MEMORY USAGE)")
    if "sample" in facts:
        print(
            f"    sample job {facts['sample']}: {facts['encoding'].decode()}, "
            f"{facts['sample bytes']} bytes"
        )
        print(f"    fields: {facts['fields']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--systems", default="corral,bullmq")
    args = parser.parse_args()
    for system in args.systems.split(","):
        measure(system, args.jobs)


if __name__ == "__main__":
    main()
