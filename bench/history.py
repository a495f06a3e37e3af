"""Queue history: the read of many busy queues, and what the counting costs the
outcome paths (complete, fail).

    .venv/bin/python bench/history.py read [--backend redis|sqlite|both] [--queues 200]
        [--repeat 20]
    .venv/bin/python bench/history.py outcomes [--backend ...] [--jobs 20000] [--batch 50]

``read`` fills every slot of the last hour (minutes) and day (quarter hours) of
``--queues`` queues with six kinds of count each (failed and five run-time buckets, a
busy queue), straight into the store's history keys / table, then times
``Corral.histories(span, queues)`` (one read for all of them) ``--repeat`` times.

``outcomes`` runs the backend's transitions with no worker around them: enqueue
``--jobs`` jobs, then claim and complete them ``--batch`` at a time, then the same
with every job failed for good. It prints the wall time per job and, on Redis, the
server's time per script call (``INFO commandstats``). To compare two versions, run it
with each one's ``src`` first on ``PYTHONPATH`` (it uses whatever ``corral`` imports).
Every Redis is a private redis-server on a free port; it writes nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer  # noqa: E402

from corral import Corral  # noqa: E402
from corral.backends.base import Backend, Completion, NewJob, Retention  # noqa: E402

KINDS = ("f", 0, 1, 2, 4, 7)  # failed, then a spread of run-time buckets


async def fill(app: Corral, queues: list[str]) -> None:
    """Six counts in every minute of the last hour and quarter of the last day."""
    backend: Any = await app.backend()
    now = await backend.time_ms()
    minutes = range(now // 60_000 - 59, now // 60_000 + 1)
    quarters = range(now // 900_000 - 95, now // 900_000 + 1)
    if app.url.startswith("redis"):
        client = backend.redis
        for queue in queues:
            keys = backend._k(queue)
            async with client.pipeline(transaction=False) as pipe:
                for step, slots in ((60_000, minutes), (900_000, quarters)):
                    for slot in slots:
                        fields = {f"{slot}:{kind}": 7 for kind in KINDS}
                        pipe.hset(keys.history(step, slot), mapping=fields)
                await pipe.execute()
        return
    rows = [
        (queue, step, slot, -1 if kind == "f" else kind, 7)
        for queue in queues
        for step, slots in ((1, minutes), (15, quarters))
        for slot in slots
        for kind in KINDS
    ]
    sql = "INSERT INTO history (queue, step, slot, kind, n) VALUES (?, ?, ?, ?, ?)"
    await backend._s().write(lambda conn: conn.executemany(sql, rows))


async def read(url: str, queues: int, repeat: int) -> None:
    app = Corral(url)
    names = [f"q{i:03d}" for i in range(queues)]
    await fill(app, names)
    for span in ("hour", "day"):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            got = await app.histories(span, names)  # type: ignore[arg-type]
            times.append((time.perf_counter() - start) * 1000)
        assert got[names[0]].completed > 0 and len(got) == queues
        print(
            f"  read {span:4} x {queues} queues: p50 {statistics.median(times):6.1f} ms"
            f"  min {min(times):6.1f}  max {max(times):6.1f}"
        )
    await app.close()


async def _script_usec(backend: Any) -> tuple[int, float]:
    """Script calls so far and the server's µs in them (Redis ``INFO commandstats``)."""
    stats = await backend.redis.info("commandstats")
    calls, usec = 0, 0.0
    for name in ("cmdstat_fcall", "cmdstat_evalsha"):
        if name in stats:
            calls += int(stats[name]["calls"])
            usec += float(stats[name]["usec"])
    return calls, usec


async def outcomes(url: str, jobs: int, batch: int) -> None:
    app = Corral(url)
    backend: Backend = await app.backend()
    redis = url.startswith("redis")
    for phase in ("complete", "fail"):
        queue = f"bench-{phase}"
        ids = [f"{phase}-{i}" for i in range(jobs)]
        for start in range(0, jobs, 1000):
            await backend.enqueue(
                queue, [NewJob(i, "b.x", b"[[],{}]") for i in ids[start : start + 1000]]
            )
        leased = []  # every job claimed first, so the window below holds outcomes only
        while claimed := (await backend.claim(queue, 500, 600_000, "bench"))[0]:
            leased += claimed
        spent, server = 0.0, []  # server: Redis µs per job of each chunk of 500 jobs
        for chunk_at in range(0, len(leased), 500):
            if redis:
                before = await _script_usec(backend)
            for at in range(chunk_at, min(chunk_at + 500, len(leased)), batch):
                chunk = leased[at : min(at + batch, chunk_at + 500)]
                start = time.perf_counter()
                if phase == "complete":
                    done = [Completion(j.id, j.token, b"null") for j in chunk]
                    await backend.complete(queue, done, Retention(count=1000))
                else:
                    for j in chunk:
                        await backend.fail(queue, j.id, j.token, b"{}", None, Retention(count=1000))
                spent += time.perf_counter() - start
            if redis:
                after = await _script_usec(backend)
                server.append((after[1] - before[1]) / min(500, len(leased) - chunk_at))
        line = f"  {phase:8}: {spent * 1e6 / len(leased):6.1f} us/job wall"
        if redis:
            # The least a chunk took is the steadiest figure on a shared machine.
            line += f", Redis {min(server):5.2f} us/job (least of {len(server)} chunks)"
            line += f", median {statistics.median(server):5.2f}"
        print(line)
    await app.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["read", "outcomes"])
    parser.add_argument("--backend", choices=["redis", "sqlite", "both"], default="both")
    parser.add_argument("--queues", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    for kind in ("redis", "sqlite") if args.backend == "both" else (args.backend,):
        print(f"{kind}:")
        with tempfile.TemporaryDirectory() as tmp:
            server = RedisServer().start() if kind == "redis" else None
            try:
                url = server.url if server else f"sqlite:///{Path(tmp) / 'history.db'}"
                if args.mode == "read":
                    await read(url, args.queues, args.repeat)
                else:
                    await outcomes(url, args.jobs, args.batch)
            finally:
                if server:
                    server.stop()


if __name__ == "__main__":
    asyncio.run(main())
