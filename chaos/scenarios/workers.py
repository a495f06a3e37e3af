"""Worker processes dying or stopping: SIGKILL, injected crashes, a poison job, SIGTERM."""

from __future__ import annotations

import random
import signal
import time
from functools import partial

from chaos.app import QUEUE
from chaos.harness import wait_until
from chaos.scenarios.common import Env, redis_consistency
from chaos.verdict import Result, read_jobs, tally, wait_drained

__all__ = ["crash_points", "graceful_stops", "kill_recovery", "kill_workers", "poison_job"]

POINTS = ("after_claim", "before_ack", "after_ack", "before_fail")


def _reached(env: Env, mark: float) -> bool:
    counts = env.client.queue(QUEUE).counts_sync()
    return counts["completed"] + counts["failed"] >= mark


def kill_workers(env: Env, quick: bool) -> Result:
    """SIGKILL random workers at random points of a large drain, restart them."""
    r = env.result
    jobs, workers, kills = (1000, 3, 3) if quick else (10_000, 4, 8)
    rng = random.Random()
    ids = env.enqueue("chaos.work", [(rng.uniform(1, 20),) for _ in range(jobs)])
    pool = env.pool(workers, lease=2, concurrency=10)
    marks = sorted(rng.uniform(0.05, 0.85) * jobs for _ in range(kills))
    last_fault = time.time()
    for mark in marks:
        if not wait_until(partial(_reached, env, mark), timeout=120, interval=0.02):
            break
        pool.kill(rng.randrange(workers))
        last_fault = time.time()
        r.faults += 1
    done = wait_drained(env.client, QUEUE, len(ids), timeout=180)
    r.recovery_s = None if done is None else done - last_fault
    t = tally(env.ledger, read_jobs(env.client, QUEUE))
    r.absorb(t)
    jobs_by_id = read_jobs(env.client, QUEUE)
    stalled = sum(1 for v in jobs_by_id.values() if v.stalls)
    strict = [j for j in t.duplicates if jobs_by_id[j].stalls >= 1 and j in t.crash_bounded]
    r.check("drained", done is not None, "queue not drained within 180 s")
    r.check("kills", r.faults >= kills, f"{r.faults} of {kills} kills happened")
    r.check("lost == 0", not t.lost, f"{len(t.lost)} lost, e.g. {t.lost[:3]}")
    r.check("unexplained == 0", not t.unexplained, f"e.g. {t.unexplained[:3]}")
    r.check(
        "duplicates only for jobs active in a killed worker",
        len(strict) == len(t.duplicates),
        f"{len(t.duplicates) - len(strict)} duplicates without a stall and a killed worker",
    )
    r.check("results from a finished execution", not t.foreign_results, f"{t.foreign_results[:3]}")
    r.note(f"{stalled} jobs stalled (recovered after their lease expired)")
    return env.finish()


def kill_recovery(env: Env, quick: bool) -> Result:
    """With library defaults (lease, reaper, max_stalls): one worker running 50 jobs
    of 0.2 s is SIGKILLed and a fresh one started at once; how long until every job
    it was running has started again (the promise: within 10 s)."""
    r = env.result
    jobs = 1000 if quick else 2000
    ids = env.enqueue("chaos.work", [(200,)] * jobs)
    pool = env.pool(1, lease=None, concurrency=50, grace=None, max_stalls=None)
    wait_until(partial(_reached, env, jobs // 4), timeout=120, interval=0.02)
    killed_at = time.time()
    pid = pool.kill(0)
    r.faults = 1
    done = wait_drained(env.client, QUEUE, len(ids), timeout=120)
    pool.stop()
    runs = env.ledger.executions()
    # The jobs the killed worker had started and not finished, and when each began again.
    killed = [j for j, ex in runs.items() if any(e.pid == pid and e.finished is None for e in ex)]
    again = {
        j: min((e.started for e in runs[j] if e.started > killed_at), default=None) for j in killed
    }
    delays = sorted(at - killed_at for at in again.values() if at is not None)
    r.recovery_s = delays[-1] if delays else None
    t = tally(env.ledger, read_jobs(env.client, QUEUE))
    r.absorb(t)
    r.check("drained", done is not None, "queue not drained within 120 s")
    r.check("the worker was running jobs when killed", bool(killed), "no unfinished execution")
    r.check("every killed job ran again", len(delays) == len(killed), f"{again}")
    r.check(
        "killed jobs ran again within 10 s",
        bool(delays) and delays[-1] <= 10.0,
        f"the last after {delays[-1] if delays else None} s",
    )
    r.check("lost == 0", not t.lost, f"{len(t.lost)} lost, e.g. {t.lost[:3]}")
    r.check("unexplained == 0", not t.unexplained, f"e.g. {t.unexplained[:3]}")
    if delays:
        r.note(
            f"killed jobs ran again after {delays[-1]:.1f} s (first {delays[0]:.1f} s, "
            f"{len(delays)} jobs; library defaults, a fresh worker started at once)"
        )
    return env.finish()


def crash_points(env: Env, quick: bool) -> list[Result]:
    """Workers crash (os._exit(86)) at each fault point, one run per point (all points
    at once in quick mode); a supervisor restarts them. 20% of jobs fail their first
    attempt, so failures are recorded (and crashed before) too."""
    if quick:
        runs = [("all points", dict.fromkeys(POINTS, 0.01), 400)]
    else:
        rates = {"after_claim": 0.02, "before_ack": 0.004, "after_ack": 0.01, "before_fail": 0.02}
        runs = [(p, {p: rates[p]}, 1500) for p in POINTS]
    rng = random.Random()
    results = []
    for label, rates, jobs in runs:
        r = Result("crash_points", f"{env.backend}, {label}")
        started = time.time()
        seen = {pid for _, pid, _, _ in env.ledger.faults("crash")}
        ids = env.enqueue(
            "chaos.work", [(rng.uniform(1, 10), rng.random() < 0.2) for _ in range(jobs)]
        )
        faults = ",".join(f"{p}={v}" for p, v in rates.items())
        pool = env.pool(3, lease=2, concurrency=10, env={"CORRAL_FAULTS": faults})
        done = wait_drained(env.client, QUEUE, len(env.ledger.enqueued_ids()), timeout=240)
        pool.stop()
        crashes = [f for f in env.ledger.faults("crash") if f[1] not in seen]
        last = max((f[2] for f in crashes), default=started)
        r.recovery_s = None if done is None else max(0.0, done - last)
        r.faults = len(crashes)
        views = read_jobs(env.client, QUEUE)
        t = tally(env.ledger, views, ids=ids)
        r.absorb(t)
        problems = redis_consistency(env.redis, QUEUE) if env.redis else []
        r.check("drained", done is not None, "not drained within 240 s")
        r.check("crashed at least once", bool(crashes), "no injected crash happened")
        r.check("lost == 0", not t.lost, f"{len(t.lost)} lost, e.g. {t.lost[:3]}")
        r.check("unexplained == 0", not t.unexplained, f"e.g. {t.unexplained[:3]}")
        r.check(
            "at most one extra execution per crash",
            len(t.crash_bounded) == len(t.duplicates),
            f"{len(t.duplicates) - len(t.crash_bounded)} jobs ran more often than crashes explain",
        )
        r.check(
            "one terminal record: completed, its result from a finished execution",
            not t.foreign_results and all(j in views and views[j].result for j in ids),
            f"{len(t.foreign_results)} results not from a finished execution",
        )
        r.check("each job in exactly one consistent state", not problems, f"{problems[:3]}")
        r.note(f"{len(crashes)} crashes over {len(ids)} jobs (CORRAL_FAULTS={faults})")
        r.wall_s = time.time() - started
        results.append(r)
    return results


def poison_job(env: Env, quick: bool) -> Result:
    """A job that kills its worker every time ends failed (Stalled) after max_stalls+1."""
    r = env.result
    max_stalls = 2
    normal = 200 if quick else 600
    rng = random.Random()
    ids = env.enqueue("chaos.work", [(rng.uniform(1, 20),) for _ in range(normal // 2)])
    poison = env.enqueue("chaos.poison", [()])[0]
    ids += env.enqueue("chaos.work", [(rng.uniform(1, 20),) for _ in range(normal - normal // 2)])
    pool = env.pool(2, lease=1, concurrency=4, max_stalls=max_stalls)
    done = wait_drained(env.client, QUEUE, normal + 1, timeout=60)
    exits = env.ledger.faults("exit")
    pool.stop()
    views = read_jobs(env.client, QUEUE)
    t = tally(env.ledger, views, ids=ids)
    r.absorb(t)
    r.jobs += 1
    r.faults = len(exits)
    last = max((f[2] for f in exits), default=None)
    r.recovery_s = None if done is None or last is None else max(0.0, done - last)
    view = views.get(poison)
    runs = env.ledger.count("SELECT COUNT(*) FROM executions WHERE job_id = ?", poison)
    error = (view.errors[-1] if view and view.errors else {}) or {}
    r.check("drained", done is not None, "not drained within 60 s")
    r.check("poison failed", view is not None and view.state == "failed", f"{view}")
    r.check("error type Stalled", error.get("type") == "Stalled", f"last error {error}")
    r.check(f"ran max_stalls+1 = {max_stalls + 1} times", runs == max_stalls + 1, f"ran {runs}")
    r.check("worker crashes == runs", len(exits) == runs, f"{len(exits)} worker exits")
    r.check("other jobs lost == 0", not t.lost, f"{len(t.lost)} lost, e.g. {t.lost[:3]}")
    r.check("unexplained == 0", not t.unexplained, f"e.g. {t.unexplained[:3]}")
    r.note(f"poison: state={view.state if view else None} stalls={view.stalls if view else None}")
    return env.finish()


def graceful_stops(env: Env, quick: bool) -> Result:
    """SIGTERM (sometimes twice) workers at random moments while jobs outlast the grace."""
    r = env.result
    jobs, stops = (300, 4) if quick else (900, 12)
    rng = random.Random()
    args = []
    for _ in range(jobs):
        kind = rng.random()
        args.append(
            (
                "chaos.work_sync" if kind < 0.15 else "chaos.work",
                rng.choice([rng.uniform(5, 50)] * 3 + [rng.uniform(600, 1500)]),
            )
        )
    ids = []
    for name in ("chaos.work", "chaos.work_sync"):
        ids += env.enqueue(name, [(ms,) for n, ms in args if n == name])
    pool = env.pool(3, lease=2, concurrency=8, grace=0.4)
    last = time.time()
    for _ in range(stops):
        time.sleep(rng.uniform(0.6, 1.5))
        slot = rng.randrange(3)
        pool.kill(slot, signal.SIGTERM)
        if rng.random() < 0.3:
            time.sleep(0.1)
            pool.kill(slot, signal.SIGTERM)  # a second signal hands back at once
        last = time.time()
        r.faults += 1
    done = wait_drained(env.client, QUEUE, len(ids), timeout=120)
    r.recovery_s = None if done is None else max(0.0, done - last)
    pool.stop()
    views = read_jobs(env.client, QUEUE)
    t = tally(env.ledger, views)
    r.absorb(t)
    stalled = [j for j in ids if views.get(j) and views[j].stalls]
    spent = [j for j in ids if views.get(j) and views[j].attempts != 1]
    handed = env.ledger.count("SELECT COUNT(*) FROM executions WHERE outcome = 'interrupted'")
    unfinished = env.ledger.count("SELECT COUNT(*) FROM executions WHERE finished IS NULL")
    r.check("drained", done is not None, "not drained within 120 s")
    r.check("lost == 0", not t.lost, f"{len(t.lost)} lost")
    r.check("no job waited for a lease expiry (stalls == 0)", not stalled, f"{stalled[:5]}")
    r.check("hand-backs spent no attempt (attempts == 1)", not spent, f"{spent[:5]}")
    r.check("duplicates == 0", not t.duplicates, f"{t.duplicates[:5]}")
    r.check("some jobs were handed back", handed > 0, "no execution was interrupted")
    r.note(f"{handed} executions interrupted and handed back; {unfinished} never finished")
    return env.finish()
