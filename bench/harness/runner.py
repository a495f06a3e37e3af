"""Runs the scenarios for each system, in turn, against the harness's own Redis.

Redis is flushed (FLUSHALL) before every run; a system that fails to import, connect
or run has its error recorded and the run goes on with the next scenario or system.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any

from harness import scenarios as sc
from harness.env import load_average
from harness.redis_server import OwnRedis
from harness.scenarios import Config
from redis.asyncio import Redis
from systems import LABELS, load
from systems.base import Context, System

Measure = Callable[[System, Config, Any], Awaitable[dict[str, Any]]]
RUN_TIMEOUT = 600.0
BACKLOG_TIMEOUT = 1200.0
# The backlog windows are short (half the small backlog), so take more of them.
BACKLOG_RUNS = 9


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) < 600 else text[:600] + "…"


async def fresh(system: System, r: Any) -> None:
    await r.flushall()
    await system.reset()


async def measure_once(
    system: System, key: str, measure: Measure, cfg: Config, r: Any, slot: dict[str, Any], run: int
) -> None:
    """One run of one scenario; a failure is recorded and ends that scenario's runs."""
    await fresh(system, r)
    try:
        result = await asyncio.wait_for(measure(system, cfg, r), RUN_TIMEOUT)
    except Exception as exc:
        slot["error"] = describe(exc)
        say(f"  [{system.id}] {key} run {run}: ERROR {slot['error']}")
        return
    finally:
        system.stop()
    slot["runs"].append(result)
    values = [r["value"] for r in slot["runs"]]
    slot["median"] = statistics.median(values)
    say(f"  [{system.id}] {key} run {run}/{cfg.runs}: {result['value']:,.2f}")


async def _queue(system: System, n: int) -> float:
    """Queue n jobs with the bulk API from a producer process of the system's own (it
    finds its Redis in the environment, as the workers do): seconds taken."""
    return float((await system.produce("fill", n))["elapsed"])


async def _small_window(system: System, cfg: Config, r: Any) -> tuple[float, dict[str, float]]:
    """Queue the small backlog; time one worker's first jobs from it, then empty it."""
    await _queue(system, cfg.backlog_small)
    return await sc.backlog_window(
        system, cfg, r, jobs=cfg.backlog_window, finish=cfg.backlog_small
    )


async def backlog(
    small_sys: System, large_sys: System, cfg: Config, r: Any, r_large: Any
) -> dict[str, Any]:
    """Scenario f: the same window of jobs drained from a small and from a large backlog.

    The two backlogs are on two redis-servers, and their windows alternate, so a
    change in the machine's speed during the scenario hits both alike. A window is the
    first ``backlog_window`` jobs a fresh worker completes: with the small backlog,
    jobs are still waiting when it ends. Both are timed in the same steady state, after
    a small backlog has been drained on each server: the bookkeeping of finished jobs
    (Corral trims its completed set past the default 1,000) is then the same in both,
    and only the backlog differs.
    """
    runs = max(cfg.runs, BACKLOG_RUNS)
    large_n = sc.size(large_sys, "large", cfg.backlog_large)
    if large_n < 2 * runs * cfg.backlog_window:  # each window also runs past its end
        raise ValueError(f"a large backlog of {large_n:,} jobs is too small for {runs} windows")
    for system, client in ((small_sys, r), (large_sys, r_large)):
        await fresh(system, client)
        await _small_window(system, cfg, client)  # warm-up, not timed
    say(f"  [{large_sys.id}] f filling {large_n:,} jobs")
    fill_rate = large_n / await _queue(large_sys, large_n)
    store = await large_sys.store_bytes(r_large)
    small: list[float] = []
    large: list[float] = []
    small_cpu: list[dict[str, float]] = []
    large_cpu: list[dict[str, float]] = []
    for _ in range(runs):
        rate, cpu = await _small_window(small_sys, cfg, r)
        small.append(rate)
        small_cpu.append(cpu)
        rate_l, cpu_l = await sc.backlog_window(large_sys, cfg, r_large, jobs=cfg.backlog_window)
        large.append(rate_l)
        large_cpu.append(cpu_l)
        say(f"  [{small_sys.id}] f small / large backlog: {rate:,.0f} / {rate_l:,.0f} jobs/s")
    small_m, large_m = statistics.median(small), statistics.median(large)
    return {
        "small": {"n": cfg.backlog_small, "runs": small, "median": small_m, "cpu": small_cpu},
        "large": {
            "n": large_n,
            "runs": large,
            "median": large_m,
            "cpu": large_cpu,
            "fill_rate": fill_rate,
        },
        "store_bytes_large": store,
        "window": cfg.backlog_window,
        "median": large_m / small_m,
        "error": None,
    }


def plan(cfg: Config, only: str = "", embedded: bool = False) -> list[tuple[str, Measure]]:
    """The measuring steps for ``cfg``'s scenarios (limited to ``only``'s letters if
    given); the embedded scenarios only for an embedded system."""
    want = set(cfg.scenarios) & set(only or cfg.scenarios)
    if not embedded:
        want -= sc.EMBEDDED
    steps: list[tuple[str, Measure]] = []
    if "a" in want:
        steps.append(("a", sc.enqueue_one))
    if want & {"b", "g"}:
        steps.append(("b", sc.enqueue_bulk))
    if want & {"c", "h"}:
        steps.append(("c", partial(sc.drain, processes=1)))
    if "d" in want:
        steps.append(("d", partial(sc.drain, processes=2)))
    if "e" in want:
        steps.append(("e", sc.latency))
    if "i" in want:
        steps.append(("i", partial(sc.drain, processes=1, kind="noop")))
    if "j" in want:
        steps.append(("j", partial(sc.drain, processes=2, kind="noop")))
    if "k" in want:
        steps.append(("k", partial(sc.drain, processes=1, kind="noop")))
    if "l" in want:
        steps.append(("l", partial(sc.drain_started, processes=cfg.embedded_processes)))
    if "m" in want:
        steps.append(("m", partial(sc.drain, processes=1, kind="cpu")))
    return steps


def runs_anything(system_id: str, cfg: Config) -> bool:
    """Whether ``system_id`` has a step in this run (an adapter that fails to import
    is kept, so its error is reported)."""
    try:
        cls = load(system_id)
    except Exception:
        return True
    return bool(plan(cfg, cls.only, cls.embedded))


def new_entry(system_id: str) -> dict[str, Any]:
    return {"id": system_id, "label": LABELS[system_id], "scenarios": {}, "seconds": 0.0}


async def open_system(system_id: str, entry: dict[str, Any], ctx: Context, r: Any) -> Any:
    """The connected adapter, or None (with the error recorded) when it cannot start."""
    try:
        cls = load(system_id)
        system: System = cls(ctx)
        entry.update(
            version=system.version(),
            settings=dict(cls.settings),
            bulk_api=cls.bulk_api,
            caps=dict(cls.caps),
            only=cls.only,
            cannot=dict(cls.cannot),
        )
        await r.flushall()
        if not system.out_of_process():
            await system.open()
        return system
    except Exception as exc:
        entry["error"] = describe(exc)
        say(f"  [{system_id}] cannot start: {entry['error']}")
        say(traceback.format_exc(limit=3))
        return None


async def close_system(system: System, r: Any) -> None:
    system.stop()
    try:
        if not system.out_of_process():
            await system.close()
    except Exception as exc:
        say(f"  [{system.id}] close failed: {describe(exc)}")
    await r.flushall()


async def one_round(
    system_id: str, entry: dict[str, Any], cfg: Config, ctx: Context, r: Any, run: int
) -> None:
    """Every scenario but f, once, for one system."""
    started = time.monotonic()
    entry.setdefault("load_average", []).append(load_average())
    system = await open_system(system_id, entry, ctx, r)
    if system is None:
        return
    try:
        for key, measure in plan(cfg, system.only, system.embedded):
            slot = entry["scenarios"].setdefault(key, {"runs": [], "median": None, "error": None})
            if key in system.cannot:
                slot["error"] = f"not measured: {system.cannot[key]}"
            elif slot["error"] is None:
                await measure_once(system, key, measure, cfg, r, slot, run)
    finally:
        await close_system(system, r)
        entry["seconds"] = round(entry["seconds"] + time.monotonic() - started, 1)


async def backlog_round(
    system_id: str, entry: dict[str, Any], cfg: Config, ctx: Context, r: Any
) -> None:
    """Scenario f for one system: its large backlog on a second redis-server."""
    started = time.monotonic()
    system = await open_system(system_id, entry, ctx, r)
    if system is None:
        return
    server = OwnRedis().start()
    r_large: Any = Redis.from_url(server.url)
    large_sys = load(system_id)(replace(ctx, redis_url=server.url))
    try:
        entry["scenarios"]["f"] = await asyncio.wait_for(
            backlog(system, large_sys, cfg, r, r_large), BACKLOG_TIMEOUT
        )
    except Exception as exc:
        entry["scenarios"]["f"] = {"error": describe(exc), "median": None}
        say(f"  [{system_id}] f: ERROR {describe(exc)}")
    finally:
        large_sys.stop()
        await r_large.aclose()
        server.stop()
        await close_system(system, r)
        entry["seconds"] = round(entry["seconds"] + time.monotonic() - started, 1)


async def run_all(systems: list[str], cfg: Config, ctx: Context, r: Any) -> dict[str, Any]:
    """Run-major order (run 1 of every system, then run 2...), so a burst of load from
    elsewhere on the machine is spread over the systems instead of hitting one."""
    systems = [sid for sid in systems if runs_anything(sid, cfg) or "f" in cfg.scenarios]
    entries = {sid: new_entry(sid) for sid in systems}
    for run in range(1, cfg.runs + 1 if plan(cfg, embedded=True) else 1):
        for sid in systems:
            if entries[sid].get("error"):
                continue
            if not runs_anything(sid, cfg):
                continue
            say(f"==> run {run}/{cfg.runs}: {LABELS[sid]} (load {load_average()})")
            await one_round(sid, entries[sid], cfg, ctx, r, run)
    if "f" in cfg.scenarios:
        for sid in systems:
            if sid in cfg.backlog_systems and not entries[sid].get("error"):
                say(f"==> backlog: {LABELS[sid]} (load {load_average()})")
                await backlog_round(sid, entries[sid], cfg, ctx, r)
    return entries
