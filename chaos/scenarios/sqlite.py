"""Many worker processes on one SQLite file, killed while they hold the write lock."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from chaos.app import QUEUE
from chaos.harness import ROOT
from chaos.scenarios.common import Env, integrity
from chaos.verdict import Result, read_jobs, tally, wait_drained

__all__ = ["sqlite_contention", "write_lock_holders"]

WAL_WRITE_LOCK = 120  # byte of the -shm file a writer locks (SQLite's unix VFS)


def write_lock_holders(db: Path) -> set[int]:
    """Pids holding the WAL write lock of ``db`` right now (from /proc/locks)."""
    try:
        inode = os.stat(f"{db}-shm").st_ino
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return set()
    holders = set()
    for line in lines:
        parts = line.split()
        if "->" in parts:
            continue
        if (
            len(parts) >= 8
            and parts[1:4] == ["POSIX", "ADVISORY", "WRITE"]
            and parts[5].rsplit(":", 1)[-1] == str(inode)
            and parts[6] == str(WAL_WRITE_LOCK)
        ):
            holders.add(int(parts[4]))
    return holders


def _forker(env: Env, n: int) -> subprocess.Popen[str]:
    # ROOT ahead of the caller's path (as the worker pool does): a checkout's src given
    # there must win over an installed Corral, or the forks run other code on the file.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    environment = {**os.environ, "CHAOS_LEDGER": env.ledger.path, "PYTHONPATH": path}
    return subprocess.Popen(
        [sys.executable, "-m", "chaos.forker", env.url, env.ledger.path, str(n)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def sqlite_contention(env: Env, quick: bool) -> Result:
    """8 workers x 4 threads claim from one file; SIGKILL writers mid-transaction; a
    forked child of a process with open connections enqueues and runs jobs."""
    r = env.result
    jobs, kills = (1500, 6) if quick else (6000, 20)
    rng = random.Random()
    env.enqueue("chaos.work_sync", [(rng.uniform(1, 10),) for _ in range(jobs)])
    pool = env.pool(8, lease=2, concurrency=4)
    forker = _forker(env, 30)
    last = time.time()
    in_lock = 0
    for _ in range(kills):
        pids = set(pool.pids())
        deadline = time.monotonic() + rng.uniform(0.3, 1.0)
        victim = None
        while time.monotonic() < deadline and victim is None:
            holders = write_lock_holders(env.db_path) & pids
            victim = next(iter(holders), None)
        slot = pool.pids().index(victim) if victim in pool.pids() else rng.randrange(8)
        pool.kill(slot, signal.SIGKILL)
        in_lock += victim is not None
        last = time.time()
        r.faults += 1
    total = env.ledger.count("SELECT COUNT(*) FROM enqueued WHERE queue = ?", QUEUE)
    done = wait_drained(env.client, QUEUE, total, timeout=120)
    r.recovery_s = None if done is None else max(0.0, done - last)
    out, _ = forker.communicate(timeout=120)
    pool.stop()
    views = read_jobs(env.client, QUEUE)
    views.update(read_jobs(env.client, "forked"))
    t = tally(env.ledger, views)
    r.absorb(t)
    try:
        report = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {"output": out[-500:]}
    check = integrity(env.db_path)
    logs = env.worker_logs()
    locked = [line for line in logs.splitlines() if "locked" in line.lower()]
    errors = env.ledger.producer_errors()
    r.check("drained", done is not None, "not drained in 120 s")
    r.check("lost == 0", not t.lost, f"{len(t.lost)} lost, e.g. {t.lost[:3]}")
    r.check("unexplained == 0", not t.unexplained, f"{t.unexplained[:3]}")
    r.check("integrity_check == ok", check == "ok", check[:200])
    r.check("no 'database is locked' anywhere", not locked and not errors, f"{locked[:2]}")
    r.check("killed at least once inside a write transaction", in_lock > 0, "never caught one")
    for variant in ("same-loop", "new-loop", "sync-api"):
        code = report.get(variant)
        detail = "hung (alarm)" if code == -signal.SIGALRM else f"exit {code}; {report}"
        r.check(f"forked child ({variant}) enqueued and ran its jobs", code == 0, detail)
    r.check("parent works after forking", report.get("parent") == "ok", f"{report}")
    r.note(f"{in_lock} of {r.faults} kills hit a worker holding the WAL write lock")
    r.note(f"forker: {report}")
    return env.finish()
