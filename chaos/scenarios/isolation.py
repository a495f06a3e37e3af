"""Isolated tasks whose child processes are SIGKILLed while they run."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from pathlib import Path

from chaos.app import QUEUE
from chaos.scenarios.common import Env
from chaos.verdict import Result, read_jobs, tally, wait_drained

__all__ = ["isolated_kills"]


def _is_job_child(pid: int) -> bool:
    """A child process forked by a worker's fork server (not the server itself): never
    signal a pid that was reused by something else."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        own = Path(f"/proc/{pid}/cmdline").read_bytes()
        server = Path(f"/proc/{parent}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return False
    return b"multiprocessing.forkserver" in own and b"multiprocessing.forkserver" in server


def isolated_kills(env: Env, quick: bool) -> Result:
    """SIGKILL the child processes of running isolated jobs (what the kernel's OOM
    killer does); each such attempt fails and is retried, no job is lost, no worker
    dies."""
    r = env.result
    jobs, kills = (300, 15) if quick else (2000, 80)
    rng = random.Random()
    ids = env.enqueue("chaos.heavy", [(rng.uniform(20, 120),) for _ in range(jobs)])
    pool = env.pool(2, lease=2, concurrency=4)
    killed: set[int] = set()
    last = time.time()
    deadline = time.monotonic() + 120
    while len(killed) < kills and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.05, 0.2))
        running = env.ledger._all(
            "SELECT pid, exec_id FROM executions WHERE finished IS NULL AND task = 'chaos.heavy'"
        )
        candidates = [(p, e) for p, e in running if p not in killed and _is_job_child(p)]
        if not candidates:
            if env.client.queue(QUEUE).counts_sync()["waiting"] == 0:
                break
            continue
        pid, exec_id = rng.choice(candidates)
        env.ledger.fault("sigkill", pid, exec_id)
        killed.add(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        last = time.time()
    r.faults = len(killed)
    done = wait_drained(env.client, QUEUE, len(ids), timeout=120)
    r.recovery_s = None if done is None else max(0.0, done - last)
    workers_alive = all(w.proc.poll() is None for w in pool.all) and len(pool.all) == 2
    pool.stop()
    views = read_jobs(env.client, QUEUE)
    t = tally(env.ledger, views, ids=ids)
    r.absorb(t)
    # A kill can land just after the job's body finished (its result on the way): that
    # job completed, and its child's death is found when the worker next picks it.
    late = env.ledger.count(
        "SELECT COUNT(*) FROM executions JOIN faults ON faults.detail = executions.exec_id "
        "WHERE executions.finished IS NOT NULL"
    )
    died = sum(
        1
        for view in views.values()
        for error in view.errors
        if error and error.get("type") == "corral.errors.ChildProcessDied"
    )
    r.check("drained", done is not None, "not drained within 120 s")
    r.check("kills", len(killed) >= kills // 2, f"{len(killed)} of {kills} kills happened")
    r.check("lost == 0", not t.lost, f"{len(t.lost)} lost, e.g. {t.lost[:3]}")
    r.check("unexplained == 0", not t.unexplained, f"e.g. {t.unexplained[:3]}")
    r.check("no worker died", workers_alive, "a worker exited or was restarted")
    r.check(
        "each kill of a running body recorded as ChildProcessDied",
        died >= len(killed) - late,
        f"{died} recorded, {len(killed)} kills, {late} after the body finished",
    )
    r.note(f"{died} attempts failed with ChildProcessDied and were retried; {late} kills late")
    return env.finish()
