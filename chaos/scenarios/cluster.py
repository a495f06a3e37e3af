"""A Redis Cluster failing under load: its busy queue's primary SIGKILLed, its slot moved.

Both run a producer (one enqueue at a time, each job with its own id, a failed enqueue
tried again with the same id) and two workers on the queue ``chaos``, whose keys all
live in the slot of ``{chaos}``; the fault hits that slot's primary.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from chaos.app import QUEUE
from chaos.harness import ROOT, RedisProc, wait_until
from chaos.scenarios.common import Env, redis_consistency
from chaos.topology import ClusterProcs
from chaos.verdict import Result, Tally, read_jobs, tally, wait_drained
from corral import JobState

__all__ = ["cluster_primary_kill", "cluster_primary_kill_durable", "cluster_reshard"]

KEY = f"corral:{{{QUEUE}}}:meta"  # any key of the queue: they share its slot
RATE = 300  # enqueues/s: a busy queue that leaves this 2-core machine some CPU


@dataclass
class Load:
    """A producer and two workers on the queue, the fault in between."""

    producer: subprocess.Popen[bytes]
    prefix: str
    seconds: float
    fault_at: float = 0.0
    more: list[str] = field(default_factory=list)  # other acknowledged jobs to count


def _start(env: Env, quick: bool, prefix: str, durable: bool) -> Load:
    seconds = 8.0 if quick else 14.0
    env.pool(2, lease=2, concurrency=10)
    cmd = [sys.executable, "-m", "chaos.producer", env.url, env.ledger.path, "--prefix", prefix]
    cmd += ["--seconds", str(seconds), "--rate", str(RATE), "--stats"]
    cmd += ["--durable"] if durable else []
    producer = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    return Load(producer, prefix, seconds)


def _result_wait(env: Env) -> str | None:
    """Enqueue a job and wait for its result (woken by pub/sub); the failure, or None."""
    try:
        job = env.client.tasks["chaos.work"].enqueue_sync(5.0)
        job.result_sync(timeout=10)
    except Exception as exc:  # reported in the check
        return f"{type(exc).__name__}: {exc}"
    return None


def _completed_after(env: Env, moment: float) -> float | None:
    """The earliest time a job of the queue was completed after ``moment`` (as the
    store recorded it), or None."""
    first: float | None = None
    q = env.client.queue(QUEUE)
    offset = 0
    while True:
        page = q.jobs_sync(JobState.COMPLETED, offset=offset, limit=5000)
        for job in page:
            at = job.finished_at.timestamp() if job.finished_at else None
            if at is not None and at > moment and (first is None or at < first):
                first = at
        if len(page) < 5000:
            return first
        offset += len(page)


def _finish(
    env: Env, r: Result, load: Load, cluster: ClusterProcs, resume_from: float, failover: bool
) -> Tally:
    """Wait for the producer and the drain; fill in ``r``'s figures and common checks
    (recovery: from ``resume_from`` to the first job completed after it). With
    ``failover``, a job run twice without a stall is explained when one of its runs
    began before the fault: the claim or the outcome that run wrote may not have reached
    the replica (a stall explains the others, as everywhere)."""
    out, _ = load.producer.communicate(timeout=load.seconds + 90)
    lines = out.decode().strip().splitlines()
    stats = json.loads(lines[-1]) if lines else {}
    r.producer_errors = stats.get("errors")
    r.slowest_enqueue_s = stats.get("slowest")
    done = wait_drained(env.client, QUEUE, 0, timeout=90)
    resumed = _completed_after(env, resume_from)
    r.recovery_s = None if resumed is None else resumed - resume_from
    ids = [i for i in env.ledger.enqueued_ids() if i.startswith(load.prefix + "-")]
    ids += load.more
    views = read_jobs(env.client, QUEUE)
    t = tally(env.ledger, views, ids=ids, crashed=set())
    r.absorb(t)
    by_fault = [
        j
        for j in t.unexplained
        if failover and any(e.started < load.fault_at + 0.2 for e in t.oks(j))
    ]
    r.explained += len(by_fault)
    r.unexplained -= len(by_fault)
    errors = env.ledger.producer_errors()
    other = [e for e in errors if e[0].startswith("other:")]
    problems = redis_consistency(cluster.owner(KEY), QUEUE)
    code = load.producer.returncode
    r.check("producer finished", code == 0, f"exit code {code}")
    r.check("only Corral errors reached the producer", not other, f"{other[:3]}")
    r.check("all jobs completed", done is not None, "queue not drained in 90 s")
    r.check("work resumed after the fault", resumed is not None, "no job completed after it")
    r.check("each job in exactly one consistent state", not problems, f"{problems[:3]}")
    unexplained = [j for j in t.unexplained if j not in by_fault]
    r.check("unexplained == 0", not unexplained, f"{unexplained[:3]}")
    r.check("no worker died", not env.ledger.faults("exit", "crash"), "a worker exited")
    kinds = sorted({e[0] for e in errors})
    r.note(
        f"{len(ids) - len(load.more)} acknowledged enqueues at {RATE}/s over "
        f"{load.seconds:.0f} s{f' (and {len(load.more)} queued before)' if load.more else ''}; "
        f"enqueue calls that raised: {r.producer_errors} ({', '.join(kinds) or 'none'}); "
        f"slowest enqueue that succeeded {r.slowest_enqueue_s} s"
    )
    if t.lost:
        where = Counter(views[j].state if j in views else "missing" for j in t.lost)
        r.note(f"lost jobs by state now: {dict(where)}; first {t.lost[:3]}, last {t.lost[-3:]}")
    stalled = sum(1 for j in ids if j in views and views[j].stalls)
    r.note(
        f"{len(t.duplicates)} jobs ran twice: {len(t.explained)} after a stall (lease expired), "
        f"{len(by_fault)} begun before the fault and run again without a stall; "
        f"{stalled} jobs stalled"
    )
    return t


def _primary_kill(env: Env, quick: bool, durable: bool) -> Result:
    cluster = env.cluster
    assert cluster is not None
    label = "cluster" + (", appendfsync always, durable=True" if durable else ", no AOF")
    r = env.result
    r.backend = label
    load = _start(env, quick, "d" if durable else "e", durable)
    time.sleep(load.seconds * 0.35)
    before = _result_wait(env)  # the harness's event hub is connected before the kill
    victim = cluster.owner(KEY)
    load.fault_at = time.time()
    cluster.kill(victim)
    env.ledger.fault("primary_kill", detail=f"port {victim.port}")
    r.faults = 1
    took_over = wait_until(lambda: cluster.failed_over(victim, KEY), 30, interval=0.02)
    failover_s = time.time() - load.fault_at
    # As a supervisor would: the node comes back as the new primary's replica (until
    # then a durable enqueue has no replica to WAIT for, and says so).
    cluster.restart(victim)
    rejoined_s = time.time() - load.fault_at
    t = _finish(env, r, load, cluster, load.fault_at, failover=True)
    after = _result_wait(env)
    r.check("a replica took over the slot", took_over, "no failover within 30 s")
    r.check(
        "job.result() (pub/sub) answers before and after the kill",
        before is None and after is None,
        f"before: {before}; after: {after}",
    )
    # Without durable, an acknowledged enqueue the replica had not received when its
    # primary died is lost (Redis replicates asynchronously): up to the enqueues of the
    # last replication round trip. The bound is loose on purpose: one second's worth.
    bound = 0 if durable else RATE
    r.check(f"acknowledged enqueues lost <= {bound}", len(t.lost) <= bound, f"{len(t.lost)} lost")
    r.note(
        f"primary on port {victim.port} SIGKILLed; its replica served the slot "
        f"{failover_s:.1f} s later (node timeout 1 s), and it was back as a replica at "
        f"+{rejoined_s:.1f} s; first job completed after the kill "
        f"at +{r.recovery_s if r.recovery_s is None else round(r.recovery_s, 1)} s; "
        f"lost {len(t.lost)}"
    )
    if durable:
        with cluster.owner(KEY).client() as client:
            waits = client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0)
        r.check("durable enqueues sent WAIT", waits > 0, "no WAIT on the queue's primary")
        r.note(f"{waits} WAIT calls on the queue's new primary (one per durable enqueue)")
    return env.finish()


def cluster_primary_kill(env: Env, quick: bool) -> Result:
    """SIGKILL the primary owning a busy queue's slot (no AOF, plain enqueues) while a
    producer and two workers run; count lost, duplicated and errored enqueues, and the
    time until a job completes again."""
    return _primary_kill(env, quick, durable=False)


def cluster_primary_kill_durable(env: Env, quick: bool) -> Result:
    """:func:`cluster_primary_kill` with ``durable=True`` enqueues (every node with
    ``appendonly yes``, ``appendfsync always``)."""
    return _primary_kill(env, quick, durable=True)


def cluster_reshard(env: Env, quick: bool) -> Result:
    """Move a busy queue's slot to another primary (MIGRATING/IMPORTING, MIGRATE in
    batches, SETSLOT NODE) while a producer and two workers run through a backlog:
    ASK, TRYAGAIN and MOVED are followed, nothing is lost, no enqueue raises, and a
    job runs twice only after a stall (its lease ran out during the move)."""
    cluster = env.cluster
    assert cluster is not None
    r = env.result
    r.backend = "cluster"
    seeded = _every_state(env, 3000 if quick else 5000)
    load = _start(env, quick, "m", durable=False)
    load.more = seeded[1:]
    time.sleep(load.seconds * 0.35)
    slot = cluster.slot_of(KEY)
    source = cluster.owner(KEY)
    target = next(n for n in cluster.primary_nodes() if n is not source)
    load.fault_at = time.time()
    env.ledger.fault("reshard", detail=f"slot {slot} {source.port} -> {target.port}")
    moved = cluster.move_slot(slot, target, batch=20, pause=0.005)
    ended = time.time()
    took = ended - load.fault_at
    r.faults = 1
    env.client.get_job_sync(seeded[0], QUEUE).cancel_sync()  # the delayed one: let it drain
    t = _finish(env, r, load, cluster, ended, failover=False)
    owner = cluster.owner(KEY)
    left = _keys_in_slot(cluster, source, slot)
    r.check("the slot is served by the target", owner is target, f"served by {owner.port}")
    r.check("no key of the slot left on the source", left == 0, f"{left} keys left")
    r.check("lost == 0", not t.lost, f"{len(t.lost)} lost, e.g. {t.lost[:3]}")
    r.check(
        "no enqueue raised (the move was shorter than reconnect_timeout, 5 s)",
        r.producer_errors == 0 and took < 5,
        f"{r.producer_errors} raised; the move took {took:.1f} s",
    )
    r.note(
        f"slot {slot} moved from port {source.port} to {target.port}: {moved} keys in "
        f"{took:.2f} s (MIGRATE 20 keys at a time, 5 ms apart); the queue's scripts are "
        f"redirected or stopped at a moved key, and tried again, until the move ends; "
        f"first job completed "
        f"{r.recovery_s if r.recovery_s is None else round(r.recovery_s, 2)} s after it ended"
    )
    return env.finish()


def _every_state(env: Env, backlog: int) -> list[str]:
    """A delayed, a cancelled and a failed job, and a ``backlog`` of 50 ms jobs behind
    the producer's (priority -1): with a key for every state present on the source,
    the queue's scripts run there during the move (none of the keys they declare is
    missing) and meet the job records already moved, or new ones. Returns the delayed
    job's id, then the backlog's (in the ledger)."""
    work = env.client.tasks["chaos.work"]
    later = work.options(delay=3600)
    delayed, cancelled = later.enqueue_sync(5.0), later.enqueue_sync(5.0)
    cancelled.cancel_sync()
    work.options(attempts=1).enqueue_sync(5.0, True)  # its one attempt raises: failed
    jobs = work.options(priority=-1).enqueue_many_sync([(50.0,)] * backlog)
    env.ledger.enqueued([j.id for j in jobs], QUEUE)
    return [delayed.id, *(j.id for j in jobs)]


def _keys_in_slot(cluster: ClusterProcs, node: RedisProc, slot: int) -> int:
    with cluster.client(node) as client:
        return int(client.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))
