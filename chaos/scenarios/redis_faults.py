"""Redis itself failing: SIGKILL and restart of redis-server, and a full Redis."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import time

from chaos.app import FILL_QUEUE, QUEUE, make_app
from chaos.harness import ROOT, RedisProc
from chaos.scenarios.common import Env, redis_consistency
from chaos.verdict import Result, read_jobs, tally, wait_drained
from corral import CorralError, StoreFull

__all__ = ["redis_full", "redis_restart", "redis_restart_producer"]


def _producers(
    env: Env, n: int, seconds: float, prefix: str, durable: bool
) -> list[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "chaos.producer", env.url, env.ledger.path]
    cmd += ["--seconds", str(seconds)] + (["--durable"] if durable else [])
    return [
        subprocess.Popen([*cmd, "--prefix", f"{prefix}{i}"], cwd=ROOT, stdin=subprocess.DEVNULL)
        for i in range(n)
    ]


def _restart_phase(env: Env, quick: bool, durable: bool) -> Result:
    assert env.redis is not None
    fsync = env.redis.options["appendfsync"]
    label = f"redis, appendfsync {fsync}" + (", durable=True" if durable else "")
    r = Result("redis_restart", label)
    started = time.time()
    prefix = "d" if durable else "e"
    seconds, kill_at, down = (5.0, 2.0, 1.0) if quick else (9.0, 4.0, 1.0)
    producers = _producers(env, 2, seconds, prefix, durable)
    time.sleep(kill_at)
    env.redis.kill()
    env.ledger.fault("redis_kill", detail=label)
    time.sleep(down)
    env.redis.start()
    env.ledger.fault("redis_restart", detail=label)
    up = time.time()
    r.faults = 1
    codes = [p.wait(seconds + 60) for p in producers]
    done = wait_drained(env.client, QUEUE, 0, timeout=90)
    r.recovery_s = None if done is None else done - up
    ids = [i for i in env.ledger.enqueued_ids() if i.startswith(prefix)]
    views = read_jobs(env.client, QUEUE)
    t = tally(env.ledger, views, ids=ids, crashed=set())
    r.absorb(t)
    rate = len(ids) / seconds
    bound = 0 if durable else math.ceil(rate * 2.0)  # everysec may postpone a write 2 s
    missing = sum(1 for j in t.lost if j not in views)
    errors = env.ledger.producer_errors()
    other = [e for e in errors if e[0].startswith("other:")]
    problems = redis_consistency(env.redis, QUEUE)
    r.check("producers carried on and finished", codes == [0] * len(codes), f"exit codes {codes}")
    r.check("only Corral errors reached producers", not other, f"{other[:3]}")
    r.check("all remaining jobs completed", done is not None, "queue not drained in 90 s")
    r.check("each job in exactly one consistent state", not problems, f"{problems[:3]}")
    r.check(f"acknowledged enqueues lost <= {bound}", len(t.lost) <= bound, f"{len(t.lost)} lost")
    r.check("unexplained == 0", not t.unexplained, f"{t.unexplained[:3]}")
    r.check("no worker died", not env.ledger.faults("exit", "crash"), "a worker exited")
    if not durable:
        r.note(
            "redis-server is SIGKILLed, not the machine: what Redis wrote to the AOF survives "
            "in the page cache, so everysec's 1-2 s window opens only on an OS crash or power "
            "loss, which this suite does not cause"
        )
    stalled = sum(1 for j in ids if j in views and views[j].stalls)
    r.note(f"{stalled} jobs stalled (a claim or renewal lost with the connection)")
    r.note(
        f"{label}: {len(ids)} acknowledged enqueues in {seconds:.0f} s ({rate:.0f}/s); "
        f"lost {len(t.lost)} ({missing} missing from Redis); producer errors while down: "
        f"{len(errors)}; Redis down {down:.0f} s + restart"
    )
    r.wall_s = time.time() - started
    return r


def redis_restart(env: Env, quick: bool) -> list[Result]:
    """SIGKILL redis-server under load and restart it on the same port and directory;
    producers (one enqueue at a time) and workers must carry on by themselves."""
    assert env.redis is not None
    env.pool(3, lease=5, concurrency=10)
    first = _restart_phase(env, quick, durable=False)
    env.redis.options["appendfsync"] = "always"
    env.redis.stop()
    env.redis.start()
    second = _restart_phase(env, quick, durable=True)
    return [first, second]


def redis_restart_producer(env: Env, quick: bool) -> Result:
    """One producer enqueuing 200 jobs/s while redis-server is SIGKILLed and restarted
    (AOF everysec, down about half a second): with the default reconnect_timeout the
    outage costs it latency, not errors, and no retried enqueue is applied twice."""
    assert env.redis is not None
    r = env.result
    env.pool(2, lease=5, concurrency=10)
    rate, down = 200, 0.5
    seconds, kill_at = (5.0, 2.0) if quick else (10.0, 4.0)
    cmd = [sys.executable, "-m", "chaos.producer", env.url, env.ledger.path, "--prefix", "r"]
    cmd += ["--seconds", str(seconds), "--rate", str(rate), "--stats"]
    producer = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    time.sleep(kill_at)
    env.redis.kill()
    env.ledger.fault("redis_kill")
    time.sleep(down)
    env.redis.start()
    env.ledger.fault("redis_restart")
    up = time.time()
    r.faults = 1
    out, _ = producer.communicate(timeout=seconds + 60)
    stats = json.loads(out.decode().strip().splitlines()[-1] if out.strip() else "{}")
    r.producer_errors = stats.get("errors")
    r.slowest_enqueue_s = stats.get("slowest")
    done = wait_drained(env.client, QUEUE, 0, timeout=90)
    r.recovery_s = None if done is None else done - up
    ids = [i for i in env.ledger.enqueued_ids() if i.startswith("r-")]
    views = read_jobs(env.client, QUEUE)
    t = tally(env.ledger, views, ids=ids, crashed=set())
    r.absorb(t)
    bound = math.ceil(rate * 2.0)  # everysec may postpone a write 2 s
    problems = redis_consistency(env.redis, QUEUE)
    r.check("producer finished", producer.returncode == 0, f"exit code {producer.returncode}")
    r.check("no enqueue raised", r.producer_errors == 0, f"{r.producer_errors} raised")
    r.check("all jobs completed", done is not None, "queue not drained in 90 s")
    r.check("each job in exactly one consistent state", not problems, f"{problems[:3]}")
    r.check(f"acknowledged enqueues lost <= {bound}", len(t.lost) <= bound, f"{len(t.lost)} lost")
    r.check("unexplained == 0", not t.unexplained, f"{t.unexplained[:3]}")
    r.note(
        f"{len(ids)} acknowledged enqueues at {rate}/s; Redis down {down} s + restart; "
        f"producer errors {r.producer_errors}; slowest enqueue {r.slowest_enqueue_s} s"
    )
    return env.finish()


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _eviction_warning(env: Env) -> list[str]:
    """Connect to a Redis with maxmemory-policy allkeys-lru; return corral.redis warnings."""
    lru = RedisProc(env.dir / "redis-lru", maxmemory="64mb", maxmemory_policy="allkeys-lru")
    capture = _Capture()
    logger = logging.getLogger("corral.redis")
    logger.addHandler(capture)
    client = make_app(lru.start().url)
    try:
        client.queue(QUEUE).counts_sync()
    finally:
        client.close_sync()
        logger.removeHandler(capture)
        lru.stop()
    return capture.messages


def redis_full(env: Env, quick: bool) -> Result:
    """maxmemory + noeviction: enqueue until StoreFull while workers drain; enqueue works
    again once drained. Long jobs run through the full period."""
    r = env.result
    fill = env.client.tasks["chaos.fill"]
    env.pool(2, lease=2, concurrency=4, queues=f"{FILL_QUEUE},{QUEUE}")
    long_ids = env.enqueue("chaos.work", [(6000.0,)] * 3)
    payload = "x" * 1000
    acked: list[str] = []
    full_errors, other = 0, []
    first_full: float | None = None
    hold = 3.0 if quick else 6.0
    deadline = time.monotonic() + 60
    ran_at_full = 0
    while time.monotonic() < deadline:
        try:
            jobs = fill.enqueue_many_sync([fill.call(payload, 20.0) for _ in range(10)])
            ids = [j.id for j in jobs]
            env.ledger.enqueued(ids, FILL_QUEUE)
            acked += ids
        except Exception as exc:  # StoreFull is the one error expected for OOM
            if isinstance(exc, StoreFull):
                full_errors += 1
            else:
                other.append(f"{type(exc).__name__}: {exc}")
            if first_full is None and "maxmemory" in str(exc):
                first_full = time.time()
                ran_at_full = env.ledger.count("SELECT COUNT(*) FROM executions")
                r.faults = 1
            time.sleep(0.02)
        if first_full is not None and time.time() - first_full > hold:
            break
    ran_during = env.ledger.count("SELECT COUNT(*) FROM executions") - ran_at_full
    drained = wait_drained(env.client, FILL_QUEUE, 0, timeout=60)
    r.recovery_s = None if drained is None or first_full is None else drained - first_full
    again: list[str] = []
    try:
        again = [j.id for j in fill.enqueue_many_sync([fill.call(payload, 1.0)] * 20)]
        env.ledger.enqueued(again, FILL_QUEUE)
    except CorralError as exc:
        other.append(f"after drain: {type(exc).__name__}: {exc}")
    wait_drained(env.client, FILL_QUEUE, 0, timeout=30)
    wait_drained(env.client, QUEUE, len(long_ids), timeout=30)
    oks = env.ledger.executions()
    ids = acked + again
    r.jobs = len(ids) + len(long_ids)
    lost = [j for j in ids if not any(e.outcome == "ok" for e in oks.get(j, []))]
    dups = [j for j in ids if sum(e.outcome == "ok" for e in oks.get(j, [])) > 1]
    views = read_jobs(env.client, QUEUE)
    t = tally(env.ledger, views, ids=long_ids, crashed=set())
    r.absorb(t)
    r.jobs = len(ids) + len(long_ids)
    r.lost += len(lost)
    r.duplicates += len(dups)
    r.unexplained += len(dups)
    long_stalls = [views[j].stalls for j in long_ids if j in views]
    warnings = _eviction_warning(env)
    r.check(
        "StoreFull raised",
        full_errors > 0,
        f"{full_errors} StoreFull; Redis refused {len(other)} enqueues with other errors",
    )
    r.check("no other exception type", not other, f"{len(other)} others, e.g. {other[:1]}")
    r.check("workers drained while full", ran_during > 0, f"{ran_during} executions while full")
    r.check("enqueue works again once drained", len(again) == 20, "")
    r.check(
        "acknowledged jobs lost == 0", not lost, f"{len(lost)} acknowledged fill jobs never ran"
    )
    r.check(
        "long jobs kept their leases while full", long_stalls == [0] * 3, f"stalls {long_stalls}"
    )
    r.check("unexplained == 0", not t.unexplained and not dups, f"{dups[:3]} {t.unexplained[:3]}")
    r.check(
        "allkeys-lru logs a WARNING on corral.redis",
        any("maxmemory-policy=allkeys-lru" in m for m in warnings),
        f"warnings: {warnings}",
    )
    kinds = sorted({o.split(":")[0] for o in other})
    r.note(
        f"{len(other)} refusals raised {kinds or 'nothing else'} instead of StoreFull; "
        f"first: {other[0][:160] if other else '-'}"
    )
    r.note(
        f"{len(acked)} jobs acknowledged before/while full, {full_errors} StoreFull refusals in "
        f"{hold:.0f} s, {ran_during} executions while full; long jobs' stalls {long_stalls}"
    )
    return env.finish()
