"""A producer and two workers on one busy queue while its Redis primary fails (a
cluster's slot owner, a Sentinel group's primary), and the counts that follow.

The producer enqueues one job at a time at :data:`RATE` per second, each with its own
id, and tries a failed enqueue again with the same id; the ledger holds every id that
was acknowledged. :class:`Topology` is what a scenario needs of the deployment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.app import QUEUE
from chaos.harness import ROOT, RedisProc, wait_until
from chaos.scenarios.common import Env, redis_consistency
from chaos.verdict import Result, Tally, read_jobs, tally, wait_drained
from corral import JobState

__all__ = [
    "KEY",
    "RATE",
    "Load",
    "Switches",
    "Topology",
    "finish_load",
    "primary_kill",
    "start_load",
]


@dataclass(frozen=True)
class Topology:
    """``primary()``: the node serving the queue now; ``failed_over(old)``: whether
    another node serves it; ``restart(node)``: a killed node back (as a replica)."""

    name: str
    primary: Callable[[], RedisProc]
    failed_over: Callable[[RedisProc], bool]
    restart: Callable[[RedisProc], None]


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


class Switches(threading.Thread):
    """Which node serves the queue, polled every 50 ms: each change is a failover
    (the injected one, and any the deployment adds by itself)."""

    def __init__(self, primary: Callable[[], RedisProc]) -> None:
        super().__init__(name="chaos-switches", daemon=True)
        self._primary = primary
        self._done = threading.Event()
        self.ports = [primary().port]
        self.at: list[float] = []

    def run(self) -> None:
        while not self._done.wait(0.05):
            try:
                port = self._primary().port
            except Exception:  # no answer during the failover: try again
                continue
            if port != self.ports[-1]:
                self.ports.append(port)
                self.at.append(time.time())

    def last(self) -> float:
        return self.at[-1] if self.at else 0.0

    def stop(self) -> None:
        self._done.set()
        self.join()


def start_load(env: Env, quick: bool, prefix: str, durable: bool) -> Load:
    seconds = 8.0 if quick else 14.0
    env.pool(2, lease=2, concurrency=10)
    cmd = [sys.executable, "-m", "chaos.producer", env.url, env.ledger.path, "--prefix", prefix]
    cmd += ["--seconds", str(seconds), "--rate", str(RATE), "--stats"]
    cmd += ["--durable"] if durable else []
    producer = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    return Load(producer, prefix, seconds)


def result_wait(env: Env) -> str | None:
    """Enqueue a job and wait for its result (woken by pub/sub); the failure, or None."""
    try:
        job = env.client.tasks["chaos.work"].enqueue_sync(5.0)
        job.result_sync(timeout=10)
    except Exception as exc:  # reported in the check
        return f"{type(exc).__name__}: {exc}"
    return None


def completed_after(env: Env, moment: float) -> float | None:
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


def finish_load(
    env: Env,
    r: Result,
    load: Load,
    node: RedisProc,
    resume_from: float,
    switched_at: Callable[[], float] | None = None,
) -> Tally:
    """Wait for the producer and the drain; fill in ``r``'s figures and common checks
    (recovery: from ``resume_from`` to the first job completed after it; ``node``:
    the primary serving the queue at the end). With
    ``switched_at`` (the last time another node took over the queue), a job run twice
    without a stall is explained when one of its runs began before then: the claim or
    the outcome that run wrote may not have reached the replica (a stall explains the
    others, as everywhere)."""
    out, _ = load.producer.communicate(timeout=load.seconds + 90)
    lines = out.decode().strip().splitlines()
    stats = json.loads(lines[-1]) if lines else {}
    r.producer_errors = stats.get("errors")
    r.slowest_enqueue_s = stats.get("slowest")
    done = wait_drained(env.client, QUEUE, 0, timeout=90)
    resumed = completed_after(env, resume_from)
    r.recovery_s = None if resumed is None else resumed - resume_from
    ids = [i for i in env.ledger.enqueued_ids() if i.startswith(load.prefix + "-")]
    ids += load.more
    views = read_jobs(env.client, QUEUE)
    t = tally(env.ledger, views, ids=ids, crashed=set())
    r.absorb(t)
    by_fault = [
        j
        for j in t.unexplained
        if switched_at is not None and any(e.started < switched_at() + 0.2 for e in t.oks(j))
    ]
    r.explained += len(by_fault)
    r.unexplained -= len(by_fault)
    errors = env.ledger.producer_errors()
    other = [e for e in errors if e[0].startswith("other:")]
    problems = redis_consistency(node, QUEUE)
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
        f"{len(by_fault)} begun before a failover and run again without a stall; "
        f"{stalled} jobs stalled"
    )
    return t


def primary_kill(env: Env, quick: bool, durable: bool, topology: Topology) -> Result:
    """SIGKILL the queue's primary under load; its replica takes over; the killed node
    is started again (as a supervisor would) and comes back as a replica."""
    label = topology.name + (", appendfsync always, durable=True" if durable else ", no AOF")
    r = env.result
    r.backend = label
    load = start_load(env, quick, "d" if durable else "e", durable)
    time.sleep(load.seconds * 0.35)
    before = result_wait(env)  # the harness's event hub is connected before the kill
    victim = topology.primary()
    switches = Switches(topology.primary)
    switches.start()
    load.fault_at = time.time()
    victim.kill()
    env.ledger.fault("primary_kill", detail=f"port {victim.port}")
    r.faults = 1
    took_over = wait_until(lambda: topology.failed_over(victim), 30, interval=0.02)
    # The watcher saw the first switch (polling every 50 ms); wait_until may have
    # waited on a slow sentinel.
    failover_s = (switches.at[0] if switches.at else time.time()) - load.fault_at
    # As a supervisor would: the node comes back as the new primary's replica (until
    # then a durable enqueue has no replica to WAIT for, and says so).
    topology.restart(victim)
    rejoined_s = time.time() - load.fault_at
    t = finish_load(env, r, load, topology.primary(), load.fault_at, switches.last)
    switches.stop()
    after = result_wait(env)
    r.check("a replica took over", took_over, "no failover within 30 s")
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
        f"primary on port {victim.port} SIGKILLed; its replica served the queue "
        f"{failover_s:.1f} s later (down after 1 s), and it was back as a replica at "
        f"+{rejoined_s:.1f} s; first job completed after the kill "
        f"at +{r.recovery_s if r.recovery_s is None else round(r.recovery_s, 1)} s; "
        f"lost {len(t.lost)}"
    )
    if len(switches.at) > 1:
        r.note(
            f"the queue changed primary {len(switches.at)} times "
            f"(ports {' -> '.join(map(str, switches.ports))}): it failed over again by "
            "itself, the new primary seen down right after the switch (a 1 s down-after "
            "is short for this busy 2-core machine); runs begun before the last switch "
            "may have been undone by it"
        )
    if durable:
        with topology.primary().client() as client:
            waits = client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0)
        r.check("durable enqueues sent WAIT", waits > 0, "no WAIT on the queue's primary")
        r.note(f"{waits} WAIT calls on the queue's new primary (one per durable enqueue)")
    return env.finish()
