"""Notifications through worker deaths: every completed job's webhook arrives.

Each job of ``chaos.notified`` has a webhook to a real receiver on loopback that
verifies every request with the ``standardwebhooks`` reference library. Workers are
SIGKILLed at random moments and crash at injected points (right after a completion is
recorded: the outcome is stored with its outbox entry, nothing relayed yet; right
before it is recorded: a delivery that reached the receiver runs again; in a relay
that took outbox entries, before or after it enqueued their deliveries: the entries
are held, then taken again).

lost: a job that did not complete, or completed and never got a verified webhook.
duplicate: a notice (one ``webhook-id``) that arrived more than once; explained when
its delivery job stalled (its worker died) or was retried.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from functools import partial

from chaos.app import QUEUE, make_app
from chaos.harness import wait_until
from chaos.receiver import Receiver
from chaos.scenarios.common import Env
from chaos.verdict import FINISHED, UNFINISHED, Result, read_jobs, tally, wait_drained
from corral import Corral
from corral._sync import run_sync
from corral.notify import Webhook
from corral.notify.registry import NOTIFY_QUEUE

__all__ = ["notify_kill"]

#: How long a relay holds the entries it took (CORRAL_OUTBOX_HOLD_MS): the default
#: 30 s would be the whole run's recovery time; 2 s is of the order of the lease.
HOLD_MS = 2000
#: Injected crashes (quick, full; a full run has about seven times as many batches of
#: completions and relay rounds): right after a batch of completions is recorded with
#: its outbox entries, right before (a delivery that reached the receiver runs again),
#: and in a relay that took outbox entries, before and after enqueuing their deliveries.
FAULTS = (
    "after_ack=0.02,before_ack=0.005,after_outbox_take=0.03,before_outbox_ack=0.03",
    "after_ack=0.005,before_ack=0.002,after_outbox_take=0.005,before_outbox_ack=0.005",
)


def _outbox_size(client: Corral, queue: str) -> int:
    async def size() -> int:
        return await (await client.backend()).outbox_size(queue)

    return run_sync(size())


def _progress(client: Corral, receiver: Receiver) -> int:
    """Jobs finished plus jobs notified: 0 to twice the number of jobs."""
    counts = client.queue(QUEUE).counts_sync()
    return sum(counts[s] for s in FINISHED) + len(receiver.notified())


def _settled(client: Corral, receiver: Receiver, completed: set[str]) -> bool:
    """Every completed job notified, no delivery job left to run, the outbox empty."""
    if not completed <= receiver.notified():
        return False
    counts = client.queue(NOTIFY_QUEUE).counts_sync()
    return sum(counts[s] for s in UNFINISHED) == 0 and _outbox_size(client, QUEUE) == 0


def notify_kill(env: Env, quick: bool) -> Result:
    """SIGKILL random workers (and crash them at injected points) while jobs with a
    webhook complete and their notifications are relayed and delivered."""
    r = env.result
    jobs, workers, kills, concurrency = (300, 3, 3, 5) if quick else (2000, 4, 8, 10)
    settle = 30 if quick else 90
    faults_env = FAULTS[0] if quick else FAULTS[1]
    rng = random.Random()
    secret = Webhook.new_secret()
    receiver = Receiver(secret)
    try:
        env.client.close_sync()
        # The producer must know the task's webhook too: an enqueue records which
        # outcomes the job's targets want.
        env.client = make_app(env.url, webhook=(receiver.url, secret))
        key = env.client.tasks["chaos.notified"].targets[0].key
        ids = env.enqueue("chaos.notified", [(rng.uniform(20, 200),) for _ in range(jobs)])
        pool = env.pool(
            workers,
            lease=2,
            concurrency=concurrency,
            env={
                "CHAOS_WEBHOOK_URL": receiver.url,
                "CHAOS_WEBHOOK_SECRET": secret,
                "CORRAL_OUTBOX_HOLD_MS": str(HOLD_MS),
                "CORRAL_FAULTS": faults_env,
            },
        )
        marks = sorted(rng.uniform(0.05, 0.85) * 2 * jobs for _ in range(kills))
        killed = 0
        for mark in marks:
            reached = partial(lambda m: _progress(env.client, receiver) >= m, mark)
            if not wait_until(reached, timeout=120, interval=0.02):
                break
            pool.kill(rng.randrange(workers))
            killed += 1
        done = wait_drained(env.client, QUEUE, len(ids), timeout=180)
        views = read_jobs(env.client, QUEUE)
        completed = {j for j in ids if j in views and views[j].state == "completed"}
        settled = wait_until(
            partial(_settled, env.client, receiver, completed), timeout=settle, interval=0.1
        )
        outbox_left = _outbox_size(env.client, QUEUE)
        pool.stop()
        deliveries = receiver.snapshot()
    finally:
        receiver.close()

    faults = env.ledger.faults("sigkill", "crash", "exit")
    r.faults = len(faults)
    crashes = sum(1 for f in faults if f[0] == "crash")
    t = tally(env.ledger, views, ids=ids)
    verified = [d for d in deliveries if d.verified]
    # A request cut short (its sender was killed mid-send) cannot verify; it is no
    # delivery either: nobody was there to get the answer.
    cut = [d for d in deliveries if d.truncated]
    bad = [d for d in deliveries if not d.verified and not d.truncated]
    hooks_of: dict[str, set[str]] = defaultdict(set)
    for d in verified:
        hooks_of[d.job_id].add(d.webhook_id)
    arrivals = Counter(d.webhook_id for d in verified)
    unnotified = sorted(completed - set(hooks_of))
    strangers = sorted(set(hooks_of) - set(ids))
    two_ids = sorted(j for j, hooks in hooks_of.items() if len(hooks) > 1)
    again = sorted(h for h, n in arrivals.items() if n > 1)
    delivery_jobs = read_jobs(env.client, NOTIFY_QUEUE)
    explained = [
        h
        for h in again
        if (v := delivery_jobs.get(f"{h}.{key}")) is not None and (v.stalls or v.attempts > 1)
    ]
    dead = sorted(j for j, v in delivery_jobs.items() if v.state != "completed")
    last_fault = max((f[2] for f in faults), default=None)
    last_delivery = max((d.at for d in verified), default=None)
    if last_fault is not None and last_delivery is not None:
        r.recovery_s = max(0.0, last_delivery - last_fault)

    r.jobs = len(ids)
    r.lost = len(t.lost) + len(unnotified)
    r.duplicates = len(again)
    r.explained = len(explained)
    r.unexplained = len(again) - len(explained)
    r.check("drained", done is not None, "jobs not drained within 180 s")
    r.check(
        "notifications settled (all delivered, none pending, outbox empty)",
        settled,
        f"not within {settle} s: {len(unnotified)} completed jobs not notified, "
        f"{outbox_left} outbox entries left",
    )
    r.check("kills", killed >= kills, f"{killed} of {kills} kills happened")
    r.check("jobs lost == 0", not t.lost, f"{len(t.lost)} not completed, e.g. {t.lost[:3]}")
    r.check(
        "completed jobs never notified == 0",
        not unnotified,
        f"{len(unnotified)}, e.g. {unnotified[:3]}",
    )
    r.check("no request with a bad signature", not bad, f"{len(bad)} failed verification")
    r.check("no webhook for an unknown job", not strangers, f"{strangers[:3]}")
    r.check("one notice id per job (one recorded outcome)", not two_ids, f"{two_ids[:3]}")
    r.check(
        "re-deliveries only where the delivery job stalled or was retried",
        len(explained) == len(again),
        f"{len(again) - len(explained)} notices delivered twice without a fault",
    )
    r.check(
        "every delivery job completed (none dead-lettered)",
        not dead and len(delivery_jobs) == len(completed),
        f"{len(delivery_jobs)} delivery jobs for {len(completed)} completed jobs; "
        f"not completed: {dead[:3]}",
    )
    r.check("task executions: unexplained == 0", not t.unexplained, f"{t.unexplained[:3]}")
    extra = sum(arrivals[h] - 1 for h in again)
    r.note(
        f"{len(verified)} verified webhooks for {len(completed)} completed jobs: "
        f"{len(again)} notices delivered more than once ({extra} extra requests), "
        f"{len(bad)} bad signatures, {len(cut)} requests cut short by a kill"
    )
    r.note(
        f"faults: {killed} SIGKILLs, {crashes} injected crashes (CORRAL_FAULTS={faults_env}); "
        f"relay hold CORRAL_OUTBOX_HOLD_MS={HOLD_MS}; lease 2 s"
    )
    r.note(
        f"task executions: {len(t.duplicates)} jobs ran twice "
        f"({len(t.explained)} explained by a stall or a dead worker)"
    )
    lags = sorted(lag for d in verified if (lag := d.lag) is not None)
    if lags:
        r.note(
            f"from a job's end to its webhook: median {lags[len(lags) // 2]:.2f} s, "
            f"max {lags[-1]:.1f} s (a worker claims from corral.notify after its other queues: deliveries wait behind the backlog)"
        )
    if r.recovery_s is not None:
        r.note(f"last verified delivery {r.recovery_s:.1f} s after the last fault")
    return env.finish()
