"""A worker whose event loop is blocked past its lease, and a long sync task that is not."""

from __future__ import annotations

import time

from chaos.app import QUEUE
from chaos.harness import wait_until
from chaos.scenarios.common import Env
from chaos.verdict import Result, read_jobs, tally, wait_drained

__all__ = ["blocked_worker"]

LATE_MARKERS = ("lease was lost", "outcome rejected", "event loop was blocked")


def _started_in(env: Env, job_id: str, pid: int) -> bool:
    return bool(
        env.ledger.count(
            "SELECT COUNT(*) FROM executions WHERE job_id = ? AND pid = ?", job_id, pid
        )
    )


def blocked_worker(env: Env, quick: bool) -> Result:
    """Worker A blocks its loop for 3 s with a 1 s lease; worker B re-runs the job and
    completes it; A's late completion must be rejected. Then a CPU-bound sync task
    longer than the lease keeps its lease."""
    r = env.result
    lease, block = 1.0, 3.0
    a = env.pool(1, lease=lease, concurrency=2, max_stalls=3)
    job = env.enqueue("chaos.block", [(block,)])[0]
    a_pid = a.pids()[0]
    r.check("A started the job", wait_until(lambda: _started_in(env, job, a_pid), 15), "")
    started = time.time()
    b = env.pool(1, lease=lease, concurrency=2, max_stalls=3)
    b_pid = b.pids()[0]
    done = wait_drained(env.client, QUEUE, 1, timeout=20)
    r.recovery_s = None if done is None else done - started
    # A wakes up after `block` seconds and tries to complete: wait for its verdict.
    wait_until(lambda: any(m in a.logs_text() for m in LATE_MARKERS[:2]), timeout=block + 5)
    time.sleep(0.5)
    view = env.client.get_job_sync(job, QUEUE)
    runs = env.ledger.executions().get(job, [])
    by_pid = {e.pid: e for e in runs}
    a_log = a.logs_text()
    said = [m for m in LATE_MARKERS if m in a_log]
    r.faults = 1
    r.check("completed", view.state.value == "completed", f"state {view.state.value}")
    r.check("stalls == 1", view.stalls == 1, f"stalls {view.stalls}")
    r.check(
        "result is B's execution",
        b_pid in by_pid and view.return_value == by_pid[b_pid].exec_id,
        f"result {view.return_value}; executions {[(e.pid, e.exec_id) for e in runs]}",
    )
    r.check(
        "ledger shows A's and B's executions, both finished",
        a_pid in by_pid and b_pid in by_pid and all(e.outcome == "ok" for e in runs),
        f"{[(e.pid, e.outcome) for e in runs]}",
    )
    rejected = [m for m in LATE_MARKERS[:2] if m in a_log]
    r.check("A's late completion was rejected (its log says so)", bool(rejected), f"log: {said}")
    r.note(f"A's log: {', '.join(repr(m) for m in said) or 'nothing'}")

    cpu_job = env.enqueue("chaos.cpu", [(block,)])[0]
    cpu_done = wait_drained(env.client, QUEUE, 2, timeout=30)
    cpu = env.client.get_job_sync(cpu_job, QUEUE)
    cpu_runs = env.ledger.executions().get(cpu_job, [])
    r.check("cpu task drained", cpu_done is not None, "not done within 30 s")
    r.check("cpu task kept its lease (stalls == 0)", cpu.stalls == 0, f"stalls {cpu.stalls}")
    r.check("cpu task ran once", len(cpu_runs) == 1, f"{len(cpu_runs)} executions")
    r.check(
        "cpu task result is its execution",
        bool(cpu_runs) and cpu.return_value == cpu_runs[0].exec_id,
        f"{cpu.return_value}",
    )
    t = tally(env.ledger, read_jobs(env.client, QUEUE))
    r.absorb(t)
    r.check("lost == 0", not t.lost, f"{t.lost}")
    r.check("unexplained == 0", not t.unexplained, f"{t.unexplained}")
    return env.finish()
