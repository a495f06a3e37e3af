"""Part 2 of ``bench/shards.py``: drains on clusters of 1, 2 and 3 primaries, and the
projection of throughput from their per-job costs (the model is in bench/README.md).

Run as a script only by ``bench/shards.py``: ``--child URL QUEUES`` is one worker process.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from chaos.topology import ClusterProcs  # noqa: E402
from redis.crc import key_slot  # noqa: E402

from corral import Corral, Retention  # noqa: E402
from corral.backends.redis.keys import QueueKeys  # noqa: E402
from corral.worker import Worker  # noqa: E402

CONCURRENCY = 50


def redis_cpu(port: int) -> float:
    """Seconds of CPU the redis-server on ``port`` has used (user + system)."""
    with redis.Redis(host="127.0.0.1", port=port) as client:
        info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def command_calls(port: int) -> tuple[int, int, int]:
    """(script calls, COMMAND GETKEYS calls, µs inside scripts) on the server on ``port``
    since its last reset. The commands a script runs are counted too, so only these tell
    round trips. Redis times a script by the clock, so on a crowded machine the time
    inside scripts includes its waits for a core and may exceed its CPU time."""
    with redis.Redis(host="127.0.0.1", port=port) as client:
        stats = client.info("commandstats")

    def of(name: str, field: str = "calls") -> int:
        return int(stats.get(f"cmdstat_{name}", {}).get(field, 0))

    scripts = of("fcall") + of("evalsha")
    return scripts, of("command|getkeys"), of("fcall", "usec") + of("evalsha", "usec")


def fresh(port: int) -> None:
    with redis.Redis(host="127.0.0.1", port=port) as client:
        client.flushall()
        client.config_resetstat()


def med(values: list[float]) -> float:
    return statistics.median(values)


def queues_per_primary(cluster: ClusterProcs) -> list[tuple[str, int]]:
    """One queue name per primary whose ``{queue}`` hash tag lands on it: (queue, port)."""
    chosen = []
    for start, (end, port) in sorted(cluster.slot_owners().items()):
        name = next(
            f"s{len(chosen)}q{i}"
            for i in range(100_000)
            if start <= key_slot(f"{{s{len(chosen)}q{i}}}".encode()) <= end
        )
        chosen.append((name, port))
    return chosen


async def enqueue(url: str, queues: list[str], per_queue: int) -> None:
    app = Corral(url, completed=Retention())
    noop = app.task(name="bench.noop")(_noop)
    for queue in queues:
        for start in range(0, per_queue, 1000):
            batch = [(i,) for i in range(start, min(per_queue, start + 1000))]
            await noop.options(queue=queue).enqueue_many(batch)
    await app.close()


async def _noop(i: int) -> None:
    return None


def completed(clients: dict[str, redis.Redis]) -> int:
    return sum(int(c.zcard(QueueKeys.build("corral", q).completed)) for q, c in clients.items())


def scale_once(cluster: ClusterProcs, per_queue: int, order: str, spinners: int) -> dict[str, Any]:
    """Drain ``per_queue`` jobs in each primary's queue with one worker process per
    primary, each serving every queue: worker i lists queue i first (``rotated``), or
    all list them in one order (``same``); ``spinners`` busy loops run beside them."""
    placed = queues_per_primary(cluster)
    queues = [q for q, _ in placed]
    for _, port in placed:
        fresh(port)
    asyncio.run(enqueue(cluster.url, queues, per_queue))
    children = []
    for i in range(len(placed)):
        # A worker claims from its queues in order and stops at the first that fills
        # its free slots: the order decides which shard it loads.
        mine = queues[i:] + queues[:i] if order == "rotated" else queues
        command = [sys.executable, __file__, "--child", cluster.url, ",".join(mine)]
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
        children.append(subprocess.Popen(command, text=True, **pipes))
    clients = {q: redis.Redis(host="127.0.0.1", port=port) for q, port in placed}
    busy: list[subprocess.Popen[bytes]] = []
    try:
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker process did not start")
        spin = [sys.executable, "-c", "while True: pass"]
        busy += [subprocess.Popen(spin) for _ in range(spinners)]
        cpu0 = [redis_cpu(port) for _, port in placed]
        calls0 = [command_calls(port) for _, port in placed]
        started = time.perf_counter()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        total = per_queue * len(placed)
        while completed(clients) < total:
            if any(child.poll() is not None for child in children):
                raise RuntimeError("a worker process ended before the drain did")
            time.sleep(0.01)
        wall = time.perf_counter() - started
        cpu1 = [redis_cpu(port) for _, port in placed]
        calls1 = [command_calls(port) for _, port in placed]
        for spinner in busy:
            spinner.kill()
        reports = [json.loads(child.communicate("stop\n", timeout=60)[0]) for child in children]
    finally:
        for child in children + busy:
            if child.poll() is None:
                child.kill()
        for client in clients.values():
            client.close()
    return {
        "redis_cpu_us": [(b - a) / per_queue * 1e6 for a, b in zip(cpu0, cpu1, strict=True)],
        "scripts_per_job": [(b[0] - a[0]) / per_queue for a, b in zip(calls0, calls1, strict=True)],
        "script_us": [(b[2] - a[2]) / per_queue for a, b in zip(calls0, calls1, strict=True)],
        "client_cpu_us": sum(r["cpu"] for r in reports) / total * 1e6,
        "jobs_per_worker": [r["jobs"] for r in reports],
        "jobs_per_s": total / wall,
    }


def stdin_lines() -> asyncio.Queue[str]:
    """Lines of stdin, read by a daemon thread: a blocked read never holds up the exit
    of a worker process that failed."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)

    threading.Thread(target=read, daemon=True).start()
    return lines


async def child(url: str, queues: list[str]) -> None:
    """A worker process: ready, then serve ``queues`` from "go" until "stop"."""
    app = Corral(url, completed=Retention())
    ran = 0

    @app.task(name="bench.noop")
    async def noop(i: int) -> None:
        nonlocal ran
        ran += 1

    await app.backend()
    worker = Worker(app, queues, concurrency=CONCURRENCY)
    lines = stdin_lines()
    print("ready", flush=True)
    await lines.get()
    cpu0 = time.process_time()
    running = asyncio.create_task(worker.run())
    stop = asyncio.ensure_future(lines.get())
    await asyncio.wait([stop, running], return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()  # a failed worker ends this process with its error
        raise RuntimeError("the worker stopped before it was told to")
    cpu = time.process_time() - cpu0
    worker.stop()
    await running
    await app.close()
    print(json.dumps({"cpu": cpu, "jobs": ran}), flush=True)


def scaling(
    clusters: dict[int, ClusterProcs], runs: int, per_queue: int, order: str, matched: bool
) -> dict[int, Any]:
    results: dict[int, list[dict[str, Any]]] = {n: [] for n in clusters}
    most = max(clusters)
    for _ in range(runs):
        for n, cluster in clusters.items():
            # Matched: a busy loop stands in for each absent redis-server and worker, so
            # every shard count shares the cores with as many busy processes.
            spinners = 2 * (most - n) if matched else 0
            results[n].append(scale_once(cluster, per_queue, order, spinners))
    return results


def project(runs: list[dict[str, Any]], shards: int) -> dict[str, Any]:
    """The model (bench/README.md): each shard's redis-server has a core (Redis runs
    commands on one thread), the workers get one core per shard, and the queues carry
    equal load, so the costliest shard bounds the Redis side."""

    def per_shard(key: str) -> list[float]:
        return [med([r[key][i] for r in runs]) for i in range(shards)]

    redis_us = per_shard("redis_cpu_us")
    client_us = med([r["client_cpu_us"] for r in runs])
    redis_bound = shards * 1e6 / max(redis_us)
    client_bound = shards * 1e6 / client_us
    return {
        "redis_us": redis_us,
        "scripts": per_shard("scripts_per_job"),
        "script_us": per_shard("script_us"),
        "client_us": client_us,
        "redis_bound": redis_bound,
        "client_bound": client_bound,
        "projected": min(redis_bound, client_bound),
        "measured": med([r["jobs_per_s"] for r in runs]),
    }


def spread(results: dict[int, Any], n: int) -> str:
    """The range of the projected ratio to one shard over the runs, each run's shard
    counts having been measured back to back (a busy machine's bursts show here)."""
    runs = len(results[n])
    if n == 1 or runs < 2:
        return ""
    ratios = [
        project([results[n][r]], n)["projected"] / project([results[1][r]], 1)["projected"]
        for r in range(runs)
    ]
    return f" ({min(ratios):.2f} to {max(ratios):.2f})"


def scaling_table(results: dict[int, Any]) -> list[str]:
    lines = [
        "| shards | Redis CPU µs/job, per shard | in scripts (clock) | script calls/job | "
        "worker CPU µs/job | projected jobs/s: Redis-bound / worker-bound | projected | "
        f"projected x 1 shard (runs' range) | measured jobs/s ({os.cpu_count()} cores) | "
        "measured x 1 shard |",
        "|--:|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    figures = {n: project(runs, n) for n, runs in results.items()}
    one = figures.get(1)
    for n, f in figures.items():
        ratio = f"{f['projected'] / one['projected']:.2f}{spread(results, n)}" if one else "-"
        measured = f"{f['measured'] / one['measured']:.2f}" if one else "-"
        lines.append(
            f"| {n} | {' / '.join(f'{v:.1f}' for v in f['redis_us'])} | "
            f"{' / '.join(f'{v:.1f}' for v in f['script_us'])} | "
            f"{' / '.join(f'{v:.3f}' for v in f['scripts'])} | {f['client_us']:.1f} | "
            f"{f['redis_bound']:,.0f} / {f['client_bound']:,.0f} | {f['projected']:,.0f} | "
            f"{ratio} | {f['measured']:,.0f} | {measured} |"
        )
    return lines


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    asyncio.run(child(sys.argv[2], sys.argv[3].split(",")))
