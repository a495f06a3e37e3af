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
from functools import partial
from typing import Any

from harness import scenarios as sc
from harness.env import load_average
from harness.scenarios import Config
from systems import LABELS, load
from systems.base import Context, System

Measure = Callable[[System, Config, Any], Awaitable[dict[str, Any]]]
RUN_TIMEOUT = 600.0
BACKLOG_TIMEOUT = 1200.0
# The backlog windows are short (the small backlog's worth of jobs), so take more of them.
BACKLOG_RUNS = 5


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


async def backlog(system: System, cfg: Config, r: Any) -> dict[str, Any]:
    """Scenario f: the same window of jobs drained from a small and from a large backlog."""
    runs = max(cfg.runs, BACKLOG_RUNS)
    small: list[float] = []
    small_cpu: list[dict[str, float]] = []
    for _ in range(runs):
        await fresh(system, r)
        await sc.fill(system, cfg.backlog_small)
        rate, cpu = await sc.backlog_window(system, cfg, r, target=cfg.backlog_small)
        small.append(rate)
        small_cpu.append(cpu)
        say(f"  [{system.id}] f small backlog: {rate:,.0f} jobs/s")
    large_n = sc.size(system, "large", cfg.backlog_large)
    if large_n < 4 * runs * cfg.backlog_small:  # each window also runs past its end
        raise ValueError(f"a large backlog of {large_n:,} jobs is too small for {runs} windows")
    await fresh(system, r)
    say(f"  [{system.id}] f filling {large_n:,} jobs")
    fill_rate = await sc.fill(system, large_n)
    store = await system.store_bytes(r)
    large: list[float] = []
    large_cpu: list[dict[str, float]] = []
    for _ in range(runs):
        rate, cpu = await sc.backlog_window(system, cfg, r, window=cfg.backlog_small)
        large.append(rate)
        large_cpu.append(cpu)
        say(f"  [{system.id}] f large backlog: {rate:,.0f} jobs/s")
    await fresh(system, r)
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
        "window": cfg.backlog_small,
        "median": large_m / small_m,
        "error": None,
    }


def plan(cfg: Config) -> list[tuple[str, Measure]]:
    want = set(cfg.scenarios)
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
    return steps


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
        for key, measure in plan(cfg):
            slot = entry["scenarios"].setdefault(key, {"runs": [], "median": None, "error": None})
            if slot["error"] is None:
                await measure_once(system, key, measure, cfg, r, slot, run)
    finally:
        await close_system(system, r)
        entry["seconds"] = round(entry["seconds"] + time.monotonic() - started, 1)


async def backlog_round(
    system_id: str, entry: dict[str, Any], cfg: Config, ctx: Context, r: Any
) -> None:
    started = time.monotonic()
    system = await open_system(system_id, entry, ctx, r)
    if system is None:
        return
    try:
        entry["scenarios"]["f"] = await asyncio.wait_for(backlog(system, cfg, r), BACKLOG_TIMEOUT)
    except Exception as exc:
        entry["scenarios"]["f"] = {"error": describe(exc), "median": None}
        say(f"  [{system_id}] f: ERROR {describe(exc)}")
    finally:
        await close_system(system, r)
        entry["seconds"] = round(entry["seconds"] + time.monotonic() - started, 1)


async def run_all(systems: list[str], cfg: Config, ctx: Context, r: Any) -> dict[str, Any]:
    """Run-major order (run 1 of every system, then run 2...), so a burst of load from
    elsewhere on the machine is spread over the systems instead of hitting one."""
    entries = {sid: new_entry(sid) for sid in systems}
    for run in range(1, cfg.runs + 1 if plan(cfg) else 1):
        for sid in systems:
            if entries[sid].get("error"):
                continue
            say(f"==> run {run}/{cfg.runs}: {LABELS[sid]} (load {load_average()})")
            await one_round(sid, entries[sid], cfg, ctx, r, run)
    if "f" in cfg.scenarios:
        for sid in systems:
            if sid in cfg.backlog_systems and not entries[sid].get("error"):
                say(f"==> backlog: {LABELS[sid]} (load {load_average()})")
                await backlog_round(sid, entries[sid], cfg, ctx, r)
    return entries
