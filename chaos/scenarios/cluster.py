"""A Redis Cluster failing under load: its busy queue's primary SIGKILLed, its slot moved.

Both run a producer (one enqueue at a time, each job with its own id, a failed enqueue
tried again with the same id) and two workers on the queue ``chaos``, whose keys all
live in the slot of ``{chaos}``; the fault hits that slot's primary.
"""

from __future__ import annotations

import time

from chaos.app import QUEUE
from chaos.harness import RedisProc
from chaos.scenarios.common import Env
from chaos.scenarios.failover import KEY, Topology, finish_load, primary_kill, start_load
from chaos.topology import ClusterProcs
from chaos.verdict import Result

__all__ = ["cluster_primary_kill", "cluster_primary_kill_durable", "cluster_reshard"]


def _topology(env: Env) -> Topology:
    cluster = env.cluster
    assert cluster is not None
    return Topology(
        "cluster",
        lambda: cluster.owner(KEY),
        lambda old: cluster.failed_over(old, KEY),
        cluster.restart,
    )


def cluster_primary_kill(env: Env, quick: bool) -> Result:
    """SIGKILL the primary owning a busy queue's slot (no AOF, plain enqueues) while a
    producer and two workers run; count lost, duplicated and errored enqueues, and the
    time until a job completes again."""
    return primary_kill(env, quick, False, _topology(env))


def cluster_primary_kill_durable(env: Env, quick: bool) -> Result:
    """:func:`cluster_primary_kill` with ``durable=True`` enqueues (every node with
    ``appendonly yes``, ``appendfsync always``)."""
    return primary_kill(env, quick, True, _topology(env))


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
    load = start_load(env, quick, "m", durable=False)
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
    t = finish_load(env, r, load, cluster.owner(KEY), ended)
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
