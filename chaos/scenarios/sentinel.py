"""A Sentinel group failing under load: its primary SIGKILLed, with the sentinels
reachable or not (paused while they should be failing over).

As on the cluster (:mod:`chaos.scenarios.failover`): a producer at 300 enqueues/s and
two workers on one queue; the group is one primary, one replica and three sentinels
that call a primary down after 1 s.
"""

from __future__ import annotations

import time

from chaos.harness import wait_until
from chaos.scenarios.common import Env
from chaos.scenarios.failover import (
    RATE,
    Switches,
    Topology,
    finish_load,
    primary_kill,
    start_load,
)
from chaos.verdict import Result

__all__ = ["sentinel_primary_kill", "sentinel_primary_kill_durable", "sentinels_paused"]

# Seconds the sentinels are stopped (SIGSTOP) from the kill on. Not 2 s or more: a
# sentinel whose clock jumped that far enters TILT mode and does nothing for 30 s
# (seen here: the failover came 33 s after the kill).
PAUSE = 1.5


def _topology(env: Env) -> Topology:
    group = env.sentinel
    assert group is not None
    return Topology("sentinel", group.primary_proc, group.failed_over, group.restart)


def sentinel_primary_kill(env: Env, quick: bool) -> Result:
    """SIGKILL the primary (no AOF, plain enqueues) while a producer and two workers
    run; count lost, duplicated and errored enqueues, and the time until a job
    completes again."""
    return primary_kill(env, quick, False, _topology(env))


def sentinel_primary_kill_durable(env: Env, quick: bool) -> Result:
    """:func:`sentinel_primary_kill` with ``durable=True`` enqueues (both nodes with
    ``appendonly yes``, ``appendfsync always``)."""
    return primary_kill(env, quick, True, _topology(env))


def sentinels_paused(env: Env, quick: bool) -> Result:
    """SIGKILL the primary and stop every sentinel at the same moment, for 1.5 s: no one
    can fail over or say where the primary is until they are resumed; then they do,
    and producer and workers must find the promoted replica by themselves."""
    group = env.sentinel
    assert group is not None
    r = env.result
    r.backend = "sentinel, no AOF"
    load = start_load(env, quick, "s", durable=False)
    time.sleep(load.seconds * 0.35)
    victim = group.primary_proc()
    switches = Switches(group.primary_proc)
    switches.start()
    load.fault_at = time.time()
    group.pause_sentinels()
    victim.kill()
    env.ledger.fault("primary_kill", detail=f"port {victim.port}, sentinels paused")
    time.sleep(PAUSE)
    group.resume_sentinels()
    r.faults = 2
    took_over = wait_until(lambda: group.failed_over(victim), 60, interval=0.02)
    # The watcher saw the first switch (polling every 50 ms); wait_until may have
    # waited on a slow sentinel.
    failover_s = (switches.at[0] if switches.at else time.time()) - load.fault_at
    if took_over:
        group.restart(victim)
    t = finish_load(env, r, load, group.primary_proc(), load.fault_at, switches.last)
    switches.stop()
    r.check("the sentinels failed over once resumed", took_over, "no failover within 60 s")
    r.check(f"acknowledged enqueues lost <= {RATE}", len(t.lost) <= RATE, f"{len(t.lost)} lost")
    if len(switches.at) > 1:
        r.note(
            f"the queue changed primary {len(switches.at)} times "
            f"(ports {' -> '.join(map(str, switches.ports))}): the sentinels failed over "
            "again by themselves; enqueues the new primary had not passed on are undone"
        )
    r.note(
        f"primary on port {victim.port} SIGKILLed and the sentinels stopped for {PAUSE} s; "
        f"the replica was named primary {failover_s:.1f} s after the kill; first job "
        f"completed at +{r.recovery_s if r.recovery_s is None else round(r.recovery_s, 1)} s; "
        f"lost {len(t.lost)}"
    )
    return env.finish()
