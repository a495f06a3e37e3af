"""The measurements. Each returns a dict with ``value`` (the headline figure) and details.

Completion is always read from the keys the job bodies write (``systems.common``: the
``INCR`` counter, plus the empty body's per-process counts), polled by the harness with
its own client; no library's result API is involved in the timing.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from systems.base import System
from systems.common import COUNTER, DONE, LOOPS

SCENARIOS = {
    "a": ("enqueue one at a time", "jobs/s", "higher"),
    "b": ("bulk enqueue", "jobs/s", "higher"),
    "c": ("drain, 1 worker process", "jobs/s", "higher"),
    "d": ("drain, 2 worker processes", "jobs/s", "higher"),
    "e": ("enqueue→start latency, idle worker", "ms", "lower"),
    "f": ("drain rate vs backlog size", "jobs/s", "higher"),
    "g": ("store memory per waiting job", "bytes/job", "lower"),
    "h": ("worker memory after draining (1 process)", "MiB", "lower"),
    "i": ("drain, 1 worker process, empty body", "jobs/s", "higher"),
    "j": ("drain, 2 worker processes, empty body", "jobs/s", "higher"),
    "k": ("embedded: drain, 1 worker process, empty body", "jobs/s", "higher"),
    "l": ("embedded: drain, N worker processes on one file, empty body", "jobs/s", "higher"),
    "m": ("embedded: drain, 1 worker process, small CPU body", "jobs/s", "higher"),
}
# Run only by the embedded systems (Corral on SQLite, Huey's SQLite storage, Django
# tasks' database backend), and only by them.
EMBEDDED = frozenset("klm")
WARMUP_PROBES = 5
# Scenario l queues this many times N: its timing starts only once every worker process
# is at work, and enough jobs must be left by then.
L_FACTOR = 2


@dataclass
class Config:
    runs: int = 3
    n_one: int = 5_000
    n_bulk: int = 10_000
    n_drain: int = 10_000
    samples: int = 300
    gap: float = 0.005
    backlog_small: int = 1_000
    backlog_large: int = 1_000_000
    # Scenario f times this many jobs from a worker's start: with the small backlog,
    # as many are still waiting when the window ends (no near-empty queue in it).
    backlog_window: int = 500
    poll: float = 0.005
    fine_poll: float = 0.002
    stall: float = 30.0
    scenarios: list[str] = field(default_factory=lambda: list("abcdefghijklm"))
    # Worker processes of scenario l (all on one SQLite file).
    embedded_processes: int = 8
    backlog_systems: list[str] = field(default_factory=list)


def size(system: System, kind: str, n: int) -> int:
    return min(n, system.caps.get(kind, n))


async def count(r: Any) -> int:
    """Jobs done: the INCR counter plus the empty body's per-process counts."""
    async with r.pipeline(transaction=False) as pipe:
        pipe.get(COUNTER)
        pipe.hvals(DONE)
        value, done = await pipe.execute()
    return int(value or 0) + sum(int(d) for d in done)


async def count_now(r: Any) -> tuple[int, float]:
    """The counter, and the harness's clock when the reply came."""
    return await count(r), time.perf_counter()


async def count_at_server(r: Any) -> tuple[int, float]:
    """The counter and Redis's clock at the same instant (one MULTI): a short window
    timed this way is not skewed by when the harness process next gets a CPU."""
    async with r.pipeline(transaction=True) as pipe:
        pipe.get(COUNTER)
        pipe.hvals(DONE)
        pipe.time()
        value, done, (sec, usec) = await pipe.execute()
    return int(value or 0) + sum(int(d) for d in done), sec + usec / 1e6


async def wait_count(
    system: System,
    r: Any,
    cfg: Config,
    *,
    target: int,
    base: int = 0,
    poll: float,
    clock: Callable[[Any], Awaitable[tuple[int, float]]] = count_now,
) -> tuple[float, float, int, tuple[float, float]]:
    """Poll the counter until it reaches ``target``. Returns (when work was first seen
    above ``base``, when done, jobs done in between, CPU used by workers and Redis in
    between): the jobs finished before the first sighting are not counted."""
    first_at: float | None = None
    cpu_first = (0.0, 0.0)
    first = last = base
    last_change: float | None = None
    while True:
        now_count, now = await clock(r)
        last_change = now if last_change is None else last_change
        if first_at is None and now_count > base:
            first_at, first = now, now_count
            cpu_first = await cpu_now(system, r)
        if first_at is not None and now_count >= target:
            cpu_end = await cpu_now(system, r)
            cpu = (cpu_end[0] - cpu_first[0], cpu_end[1] - cpu_first[1])
            return first_at, now, now_count - first, cpu
        if now_count != last:
            last, last_change = now_count, now
        elif now - last_change > cfg.stall:
            raise TimeoutError(f"no progress for {cfg.stall:.0f}s at {now_count - base} jobs done")
        system.check_workers()
        await asyncio.sleep(poll)


async def cpu_now(system: System, r: Any) -> tuple[float, float]:
    """CPU seconds used so far by (the worker processes, Redis)."""
    info = await r.info("cpu")
    return system.worker_cpu(), float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def per_job_us(n: int, **seconds: float) -> dict[str, float]:
    return {name: round(value / n * 1e6, 1) for name, value in seconds.items()}


async def _enqueue_cpu(r: Any) -> tuple[float, float]:
    info = await r.info("cpu")
    return time.process_time(), float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _enqueue_cost(
    system: System, n: int, cpu0: tuple[float, float], cpu1: tuple[float, float]
) -> dict[str, float]:
    """Producer and Redis CPU per job; an out-of-process producer reports its own
    (its start-up and connecting are not counted, as for the in-process ones)."""
    producer, redis = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    if system.out_of_process() and system.producer_cpu is not None:
        producer = system.producer_cpu
        redis = system.producer_redis_cpu or redis
    return per_job_us(n, producer=producer, redis=redis)


def _rate(done: int, first_at: float, end: float) -> float:
    if end <= first_at or done <= 0:
        raise RuntimeError("finished within one poll interval: use more jobs")
    return done / (end - first_at)


async def enqueue_one(system: System, cfg: Config, r: Any) -> dict[str, Any]:
    n = size(system, "one", cfg.n_one)
    cpu0 = await _enqueue_cpu(r)
    elapsed = await system.enqueue_one(n)
    cpu1 = await _enqueue_cpu(r)
    return {"value": n / elapsed, "n": n, "cpu_us_per_job": _enqueue_cost(system, n, cpu0, cpu1)}


async def enqueue_bulk(system: System, cfg: Config, r: Any) -> dict[str, Any]:
    """Bulk enqueue rate, and the store growth per waiting job (scenario g)."""
    n = size(system, "bulk", cfg.n_bulk)
    before = await system.store_bytes(r)
    cpu0 = await _enqueue_cpu(r)
    elapsed = await system.enqueue_bulk(n)
    cpu1 = await _enqueue_cpu(r)
    after = await system.store_bytes(r)
    cpu = _enqueue_cost(system, n, cpu0, cpu1)
    return {
        "value": n / elapsed,
        "n": n,
        "bytes_per_job": (after - before) / n,
        "cpu_us_per_job": cpu,
    }


async def drain(
    system: System, cfg: Config, r: Any, processes: int, kind: str = "incr"
) -> dict[str, Any]:
    """Queue n ``kind`` jobs, start the workers, time them from the first completion seen."""
    n = size(system, "drain", cfg.n_drain)
    await system.enqueue_bulk(n, kind)
    spawned = time.perf_counter()
    system.start_workers(processes)
    first_at, end, done, cpu = await wait_count(system, r, cfg, target=n, poll=cfg.poll)
    loops = sorted({v.decode() for v in await r.hvals(LOOPS)})
    out: dict[str, Any] = {
        "loops": loops,
        "value": _rate(done, first_at, end),
        "cpu_us_per_job": per_job_us(done, worker=cpu[0], redis=cpu[1]),
        "n": n,
        "startup_s": round(first_at - spawned, 3),
        "including_startup": n / (end - spawned),
    }
    if processes == 1:
        out["memory"] = system.worker_memory()
    return out


async def drain_started(
    system: System, cfg: Config, r: Any, processes: int, kind: str = "noop"
) -> dict[str, Any]:
    """Scenario l: queue ``L_FACTOR`` times N ``kind`` jobs, start ``processes`` workers, and
    time them from the moment every worker process has finished a job (each one's
    count appears in ``DONE``) to the end: the jobs done while the others were still
    starting (8 interpreters importing on a small machine take seconds) are not
    counted, so the figure is the rate of all of them at work."""
    n = size(system, "drain", cfg.n_drain * L_FACTOR)
    await system.enqueue_bulk(n, kind)
    spawned = time.perf_counter()
    system.start_workers(processes)
    last_change, last = spawned, -1
    while True:
        async with r.pipeline(transaction=False) as pipe:
            pipe.hlen(DONE)
            pipe.get(COUNTER)
            pipe.hvals(DONE)
            started, value, done = await pipe.execute()
        now_count, now = int(value or 0) + sum(int(d) for d in done), time.perf_counter()
        if started >= processes:
            break
        if now_count >= n:
            raise RuntimeError(
                f"all {n:,} jobs were done before the {processes} worker processes had all "
                f"started ({started} had): use more jobs (--n)"
            )
        if now_count != last:
            last, last_change = now_count, now
        elif now - last_change > cfg.stall:
            raise TimeoutError(f"no progress for {cfg.stall:.0f}s at {now_count} jobs done")
        system.check_workers()
        await asyncio.sleep(cfg.poll)
    first_at, end, done_n, cpu = await wait_count(
        system, r, cfg, target=n, base=now_count - 1, poll=cfg.poll
    )
    return {
        "value": _rate(done_n, first_at, end),
        "cpu_us_per_job": per_job_us(done_n, worker=cpu[0], redis=cpu[1]),
        "n": n,
        "timed": done_n,
        "startup_s": round(first_at - spawned, 3),
        "including_startup": n / (end - spawned),
    }


async def probe(system: System, cfg: Config, r: Any) -> dict[str, Any]:
    """Latency probes, one at a time, on one idle worker of ``system``."""
    system.start_workers(1)
    try:
        n = size(system, "samples", cfg.samples)
        probes = await system.latency(n + WARMUP_PROBES, cfg.gap, r)
    finally:
        system.stop()
    samples = sorted(s * 1000 for s in probes[WARMUP_PROBES:])
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    return {
        "value": statistics.median(samples),
        "p50": statistics.median(samples),
        "p99": p99,
        "max": samples[-1],
        "n": len(samples),
    }


async def latency(system: System, cfg: Config, r: Any) -> dict[str, Any]:
    """Scenario e. There is no "floor" beside it: a bare blocking pop is not the
    wake-up path any of these systems uses, so it bounds none of them."""
    return await probe(system, cfg, r)


async def backlog_window(
    system: System, cfg: Config, r: Any, *, jobs: int, finish: int = 0
) -> tuple[float, dict[str, float]]:
    """Start one worker and time the jobs from the first completion seen until ``jobs``
    jobs have completed since it started; then, if ``finish`` is given, let it complete
    that many in all (not timed) before stopping it."""
    base = await count(r)
    system.start_workers(1)
    try:
        first_at, end, done, cpu = await wait_count(
            system,
            r,
            cfg,
            target=base + jobs,
            base=base,
            poll=cfg.fine_poll,
            clock=count_at_server,
        )
        if finish:
            await wait_count(system, r, cfg, target=base + finish, base=base, poll=cfg.poll)
    finally:
        system.stop()
    return _rate(done, first_at, end), per_job_us(done, worker=cpu[0], redis=cpu[1])
