"""One harness run: start Redis, measure the chosen systems, write the reports."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import env, report
from harness.redis_server import OwnRedis
from harness.runner import run_all, say
from harness.scenarios import Config
from redis.asyncio import Redis
from systems import REGISTRY
from systems.base import Context

SMOKE_SYSTEMS = ["corral-redis", "corral-sqlite"]
# Scenario f (a million-job backlog) is limited to Corral, Node BullMQ and the two
# fastest Python peers (by 2-process drain) of a first full run, to keep the whole
# run near 15 minutes.
BACKLOG_SYSTEMS = ["corral-redis", "bullmq-node", "huey", "dramatiq"]


def config(args: argparse.Namespace) -> Config:
    if args.smoke:
        cfg = Config(runs=1, n_one=200, n_bulk=300, n_drain=3000, samples=20, gap=0.005)
        cfg.scenarios = list("abcegi")
    else:
        cfg = Config(backlog_systems=list(BACKLOG_SYSTEMS))
    for name, attr in [
        ("runs", "runs"),
        ("n", "n_drain"),
        ("n_one", "n_one"),
        ("samples", "samples"),
        ("backlog_large", "backlog_large"),
        ("scenarios", "scenarios"),
        ("backlog_systems", "backlog_systems"),
        ("embedded_processes", "embedded_processes"),
    ]:
        if getattr(args, name) is not None:
            setattr(cfg, attr, getattr(args, name))
    if args.n is not None:
        cfg.n_bulk = args.n
    return cfg


def systems(args: argparse.Namespace) -> list[str]:
    chosen = args.systems or (SMOKE_SYSTEMS if args.smoke else list(REGISTRY))
    unknown = [s for s in chosen if s not in REGISTRY]
    if unknown:
        raise SystemExit(f"unknown systems {unknown}; known: {', '.join(REGISTRY)}")
    return chosen


def out_dir(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return args.out
    if args.smoke:  # never overwrite the full run's results with a smoke run
        return Path(tempfile.gettempdir()) / "corral-bench-smoke"
    return env.BENCH


async def execute(args: argparse.Namespace) -> int:
    cfg, chosen, out = config(args), systems(args), out_dir(args)
    busy_before = env.cpu_busy()
    load_before = env.load_average()
    started = time.time()
    work_dir = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    server = OwnRedis().start()
    os.environ["BENCH_REDIS_URL"] = server.url  # adapters read it at import
    r: Any = Redis.from_url(server.url)
    try:
        info = await r.info("server")
        say(f"redis {info['redis_version']} on {server.url}; logs in {work_dir}")
        ctx = Context(redis_url=server.url, bench_dir=env.BENCH, work_dir=work_dir)
        results = await run_all(chosen, cfg, ctx, r)
    finally:
        await r.aclose()
        server.stop()
        if not args.keep_logs:
            shutil.rmtree(work_dir, ignore_errors=True)
    data = {
        "command": os.environ.get("BENCH_COMMAND", "python bench/run.py"),
        "mode": "smoke" if args.smoke else "full",
        "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "machine": {**env.machine(), "redis": info["redis_version"]},
        "corral_source": env.corral_source(),
        "load": {
            "cpu_busy_pct_before": busy_before,
            "load_average_before": load_before,
            "load_average_after": env.load_average(),
        },
        "config": {**cfg.__dict__, "systems": chosen},
        "systems": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    report.write(out, data)
    say(f"wrote {out / 'RESULTS.md'} and {out / 'results.json'} in {data['duration_s']}s")
    problems = report.errors(data)
    for problem in problems:
        say(f"error: {problem}")
    # A full run records failures in the report; a smoke run is a self-test and fails.
    return 1 if problems and args.smoke else 0


if __name__ == "__main__":
    sys.exit("run bench/run.py")
