"""Redis Cluster: what the fast path costs on one shard, and how throughput grows with shards.

    .venv/bin/python bench/shards.py [--runs 5] [--jobs 20000] [--singles 1000]
        [--per-queue 10000] [--shards 1,2,3] [--order rotated|same] [--matched]
        [--only fastpath|shards] [--json PATH]
    .venv/bin/python bench/shards.py --quick       # smoke run: a few hundred jobs

Part 1, the fast path: a standalone redis-server and a one-primary cluster, both fresh;
``--jobs`` no-op jobs enqueued (batches of 1,000) then drained by one in-process worker
(concurrency 50), through (a) ``redis://`` (MuxRedis), (b) ``redis+cluster://``
(MuxCluster) and (c) ``redis+cluster://`` with every command on redis-py's
``RedisCluster`` routing (the bench swaps MuxCluster's ``execute_command`` for redis-py's;
before redis-py 8.2 that path asks ``COMMAND GETKEYS`` for each ``FCALL``). Variants
alternate within each run. Part 2 (``shard_scaling.py``): clusters of 1, 2 and 3
primaries, one queue and one worker process per primary.

Figures are medians of ``--runs``; the method and the projection model are in
bench/README.md. Every Redis is a private redis-server on free loopback ports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from chaos.harness import RedisProc  # noqa: E402
from chaos.topology import ClusterProcs  # noqa: E402
from redis.asyncio.cluster import RedisCluster  # noqa: E402
from shard_scaling import (  # noqa: E402
    CONCURRENCY,
    command_calls,
    fresh,
    med,
    redis_cpu,
    scaling,
    scaling_table,
)

from corral import Corral, Retention  # noqa: E402
from corral.backends.redis.cluster import MuxCluster  # noqa: E402
from corral.worker import Worker  # noqa: E402

VARIANTS = {
    "standalone": "(a) `redis://`, MuxRedis",
    "mux": "(b) `redis+cluster://`, MuxCluster",
    "routed": "(c) `redis+cluster://`, redis-py routing",
}


ROUTED = [0]  # commands that took redis-py's cluster routing


@contextlib.contextmanager
def routing(redis_py: bool) -> Iterator[None]:
    """Count the commands that take redis-py's cluster routing (``ROUTED``); with
    ``redis_py`` (variant c) every command of MuxCluster takes it."""
    original = RedisCluster.execute_command
    own = MuxCluster.execute_command

    async def counted(self: RedisCluster, *args: Any, **kwargs: Any) -> Any:
        ROUTED[0] += 1
        return await original(self, *args, **kwargs)

    RedisCluster.execute_command = counted  # type: ignore[method-assign]
    if redis_py:
        MuxCluster.execute_command = counted  # type: ignore[method-assign]
    try:
        yield
    finally:
        RedisCluster.execute_command = original  # type: ignore[method-assign]
        MuxCluster.execute_command = own  # type: ignore[method-assign]


# -- part 1: the fast path on one shard ----------------------------------------------------


async def until_ran(all_ran: asyncio.Event, running: asyncio.Task[None]) -> None:
    """Wait for ``all_ran``; raise if the worker ended first (it would never be set)."""
    ran = asyncio.ensure_future(all_ran.wait())
    await asyncio.wait([ran, running], return_when=asyncio.FIRST_COMPLETED)
    if not ran.done():
        ran.cancel()
        running.result()  # its error, if it failed
        raise RuntimeError("the worker stopped before every job ran")


async def fastpath_once(url: str, port: int, jobs: int, singles: int) -> dict[str, float]:
    """One enqueue + drain of ``jobs`` no-op jobs on ``url`` (server on ``port``)."""
    app = Corral(url, completed=Retention())
    ran = 0
    all_ran = asyncio.Event()

    @app.task(name="bench.noop", queue="bench")
    async def noop(i: int) -> None:
        nonlocal ran
        ran += 1
        if ran == jobs:
            all_ran.set()

    # Connect and load the scripts outside the timed window.
    await noop.options(queue="warm").enqueue(0)
    started = time.perf_counter()
    for i in range(singles):
        await noop.options(queue="single").enqueue(i)
    single_s = time.perf_counter() - started

    worker = Worker(app, ["bench"], concurrency=CONCURRENCY)
    queue = app.queue("bench")
    server_cpu0 = redis_cpu(port)
    calls0, routed0 = command_calls(port), ROUTED[0]
    cpu0, started = time.process_time(), time.perf_counter()
    for start in range(0, jobs, 1000):
        await noop.enqueue_many([(i,) for i in range(start, min(jobs, start + 1000))])
    running = asyncio.create_task(worker.run())
    await until_ran(all_ran, running)
    while (await queue.counts())["completed"] < jobs:
        await asyncio.sleep(0.002)
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - cpu0
    server_cpu = redis_cpu(port) - server_cpu0
    calls1, routed = command_calls(port), ROUTED[0] - routed0
    worker.stop()
    await running
    await app.close()
    return {
        "jobs_per_s": jobs / wall,
        "us_per_job": wall / jobs * 1e6,
        "client_cpu_us": client_cpu / jobs * 1e6,
        "redis_cpu_us": server_cpu / jobs * 1e6,
        "scripts_per_job": (calls1[0] - calls0[0]) / jobs,
        "script_us": (calls1[2] - calls0[2]) / jobs,
        "getkeys_per_job": (calls1[1] - calls0[1]) / jobs,
        "redis_py_routed_per_job": routed / jobs,
        "single_enqueue_us": single_s / singles * 1e6,
    }


def fastpath(
    standalone: RedisProc, cluster: ClusterProcs, runs: int, jobs: int, singles: int
) -> dict[str, list[dict[str, float]]]:
    node = cluster.primary_nodes()[0]
    targets = {
        "standalone": (standalone.url, standalone.port),
        "mux": (cluster.url, node.port),
        "routed": (cluster.url, node.port),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    names = list(targets)
    for run in range(runs):
        # Rotated, so no variant always runs first (a cold process) or right after another.
        for name in names[run % 3 :] + names[: run % 3]:
            url, port = targets[name]
            fresh(port)
            with routing(redis_py=name == "routed"):
                results[name].append(asyncio.run(fastpath_once(url, port, jobs, singles)))
    return results


# -- report --------------------------------------------------------------------------------


def fastpath_table(results: dict[str, list[dict[str, float]]]) -> list[str]:
    base = med([r["us_per_job"] for r in results["standalone"]])
    lines = [
        "| variant | jobs/s | µs/job (wall) | x standalone | client CPU µs/job | "
        "Redis CPU µs/job | in scripts (clock) µs/job | script calls/job | "
        "via redis-py routing/job | GETKEYS/job | "
        "one-at-a-time enqueue µs |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, label in VARIANTS.items():
        runs = results[name]

        def m(key: str, runs: list[dict[str, float]] = runs) -> float:
            return med([r[key] for r in runs])

        lines.append(
            f"| {label} | {m('jobs_per_s'):,.0f} | {m('us_per_job'):.1f} | "
            f"{m('us_per_job') / base:.2f} | {m('client_cpu_us'):.1f} | "
            f"{m('redis_cpu_us'):.1f} | {m('script_us'):.1f} | {m('scripts_per_job'):.3f} | "
            f"{m('redis_py_routed_per_job'):.3f} | {m('getkeys_per_job'):.3f} | "
            f"{m('single_enqueue_us'):.0f} |"
        )
    return lines


def header() -> list[str]:
    version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return [
        f"Machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
        f"{' '.join(version[:3])}; redis-py {redis.__version__}; Corral {commit}",
        "",
    ]


def shard_counts(text: str) -> list[int]:
    try:
        counts = sorted({int(n) for n in text.split(",")})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(
            f"--shards wants primaries counts >= 1 like 1,2,3, not {text!r}"
        )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=20000, help="fast path: jobs per run")
    parser.add_argument("--singles", type=int, default=1000, help="fast path: one-at-a-time adds")
    parser.add_argument("--per-queue", type=int, default=10000, help="shards: jobs per shard")
    parser.add_argument("--shards", type=shard_counts, default=[1, 2, 3], help="e.g. 1,2,3")
    parser.add_argument(
        "--order",
        choices=["rotated", "same"],
        default="rotated",
        help="shards: worker i lists queue i first, or all list the queues in one order",
    )
    parser.add_argument(
        "--matched",
        action="store_true",
        help="shards: run 2 busy loops per shard short of the most, so every count is as crowded",
    )
    parser.add_argument("--only", choices=["fastpath", "shards"], help="run one part")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, 1 run")
    parser.add_argument("--json", type=Path, help="write every run here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.jobs, args.singles, args.per_queue, args.shards = 1, 300, 30, 200, [1, 2]
    fast: dict[str, Any] = {}
    scaled: dict[int, Any] = {}
    sizes = [1] if args.only == "fastpath" else args.shards
    with tempfile.TemporaryDirectory(prefix="corral-shards-") as tmp:
        standalone = RedisProc(Path(tmp) / "standalone")
        clusters = {n: ClusterProcs(Path(tmp) / f"c{n}", primaries=n, replicas=0) for n in sizes}
        servers: list[Any] = [*clusters.values()]
        if args.only != "shards":
            clusters.setdefault(1, ClusterProcs(Path(tmp) / "c1", primaries=1, replicas=0))
            servers = [standalone, *clusters.values()]
        try:
            # A cluster takes ~2 s to accept writes after it forms: start them all at once.
            with ThreadPoolExecutor(len(servers)) as pool:
                list(pool.map(lambda server: server.start(), servers))
            if args.only != "shards":
                fast = fastpath(standalone, clusters[1], args.runs, args.jobs, args.singles)
            if args.only != "fastpath":
                wanted = {n: clusters[n] for n in args.shards}
                scaled = scaling(wanted, args.runs, args.per_queue, args.order, args.matched)
        finally:
            standalone.stop()
            for cluster in clusters.values():
                cluster.stop()
    lines = header()
    if fast:
        lines += [f"## Fast path on one shard ({args.jobs:,} jobs, median of {args.runs})", ""]
        lines += [*fastpath_table(fast), ""]
    if scaled:
        title = f"{args.per_queue:,} jobs per shard, queue order {args.order}"
        title += ", crowding matched" if args.matched else ""
        lines += [f"## Shards ({title}, median of {args.runs})", ""]
        lines += scaling_table(scaled)
    print("\n".join(lines))
    if args.json:
        config = {k: v for k, v in vars(args).items() if k != "json"}
        data = {"config": config, "fastpath": fast, "shards": scaled}
        args.json.write_text(json.dumps(data, indent=1, default=str))


if __name__ == "__main__":
    main()
