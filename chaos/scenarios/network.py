"""Workers talk to Redis through a faulty network (chaos.proxy)."""

from __future__ import annotations

import random
import time

from chaos.app import QUEUE
from chaos.harness import wait_until
from chaos.proxy import Proxy
from chaos.scenarios.common import Env
from chaos.verdict import Result, read_jobs, tally, wait_drained

__all__ = ["connection_faults"]


def _done(env: Env) -> int:
    counts = env.client.queue(QUEUE).counts_sync()
    return counts["completed"] + counts["failed"]


def connection_faults(env: Env, quick: bool) -> list[Result]:
    """Latency below lease/2 causes no stalls; dropped and half-open connections heal;
    connections whose peer vanished (never answered, never reset) are detected."""
    assert env.redis is not None
    proxy = Proxy(env.redis.port).start()
    try:
        return _run(env, quick, proxy)
    finally:
        for pool in env.pools:
            pool.stop(grace=3)
        proxy.close()


def _run(env: Env, quick: bool, proxy: Proxy) -> list[Result]:
    rng = random.Random()
    url = f"redis://127.0.0.1:{proxy.port}/0"
    lease = 2.0
    env.pool(3, lease=lease, concurrency=10, url=url)

    # Phase 1: latency, 200-400 ms per direction (a round trip < lease/2).
    lat = Result("connection_faults", "redis, latency 200-400 ms")
    t0 = time.time()
    proxy.latency(0.2, 0.4)
    short = 120 if quick else 400
    ids1 = env.enqueue("chaos.work", [(rng.uniform(5, 50),) for _ in range(short)])
    ids1 += env.enqueue("chaos.work", [(3000.0,)] * 5)  # renewed several times
    done = wait_drained(env.client, QUEUE, len(ids1), timeout=120)
    proxy.latency(0.0)
    views = read_jobs(env.client, QUEUE)
    t1 = tally(env.ledger, views, ids=ids1)
    lat.absorb(t1)
    stalled = [j for j in ids1 if views.get(j) and views[j].stalls]
    lat.check("drained", done is not None, "not drained in 120 s")
    lat.check("no spurious stalls (all stalls == 0)", not stalled, f"{len(stalled)} stalled")
    lat.check("lost == 0", not t1.lost, f"{len(t1.lost)} lost")
    lat.check("duplicates == 0", not t1.duplicates, f"{t1.duplicates[:3]}")
    lat.wall_s = time.time() - t0

    # Phase 2: drop every connection, then half-open, then heal.
    faults = Result("connection_faults", "redis, drop 3 s + half-open 3 s")
    t0 = time.time()
    n2 = 1000 if quick else 3000
    ids2 = env.enqueue("chaos.work", [(rng.uniform(1, 30),) for _ in range(n2)])
    ids2 += env.enqueue("chaos.work", [(1000.0,)] * 10)
    base = len(ids1)
    wait_until(lambda: _done(env) >= base + n2 // 5, timeout=60, interval=0.02)
    proxy.drop()
    env.ledger.fault("proxy_drop")
    time.sleep(3)
    proxy.heal()
    time.sleep(1)
    proxy.half_open()
    env.ledger.fault("proxy_half_open")
    time.sleep(3)
    proxy.heal()
    healed = time.time()
    faults.faults = 2
    done = wait_drained(env.client, QUEUE, base + len(ids2), timeout=120)
    faults.recovery_s = None if done is None else done - healed
    views = read_jobs(env.client, QUEUE)
    t2 = tally(env.ledger, views, ids=ids2)
    faults.absorb(t2)
    faults.check("drained after heal", done is not None, "not drained in 120 s")
    faults.check("lost == 0", not t2.lost, f"{len(t2.lost)} lost")
    faults.check("unexplained == 0", not t2.unexplained, f"{t2.unexplained[:3]}")
    faults.check("no worker died", not env.ledger.faults("exit", "crash"), "a worker exited")
    faults.note(f"{sum(1 for j in ids2 if views.get(j) and views[j].stalls)} jobs stalled")
    faults.wall_s = time.time() - t0

    # Phase 3: the peer vanishes: old connections never answer and are never reset.
    dead = Result("connection_faults", "redis, peer vanished (no reset)")
    t0 = time.time()
    n3 = 300 if quick else 1000
    ids3 = env.enqueue("chaos.work", [(rng.uniform(1, 30),) for _ in range(n3)])
    base += len(ids2)
    wait_until(lambda: _done(env) >= base + n3 // 5, timeout=60, interval=0.02)
    proxy.half_open()
    env.ledger.fault("proxy_half_open")
    time.sleep(2)
    proxy.heal(stale=True)
    healed = time.time()
    dead.faults = 1
    limit = 30 if quick else 60
    done = wait_drained(env.client, QUEUE, base + len(ids3), timeout=limit)
    dead.recovery_s = None if done is None else done - healed
    views = read_jobs(env.client, QUEUE)
    t3 = tally(env.ledger, views, ids=ids3)
    dead.absorb(t3)
    counts = env.client.queue(QUEUE).counts_sync()
    dead.check(
        f"workers recover within {limit} s",
        done is not None,
        f"still {counts['waiting']} waiting, {counts['active']} active {limit} s after the "
        "network healed: every worker is stuck on a connection that will never answer",
    )
    dead.check("lost == 0", not t3.lost, f"{len(t3.lost)} not completed")
    dead.check("unexplained == 0", not t3.unexplained, f"{t3.unexplained[:3]}")
    timeouts = env.worker_logs().count("Timeout reading")
    dead.note(
        f"{timeouts} 'Timeout reading' errors in worker logs: recovery relies on redis-py's "
        "default socket_timeout (5 s since redis-py 8; None before), Corral sets none"
    )
    dead.wall_s = time.time() - t0
    return [lat, faults, dead]
