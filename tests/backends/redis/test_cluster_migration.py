"""Scripts stopped half-way by a slot migration change nothing.

While a slot migrates, its keys are on either node. Redis runs a script on one side
when every key it declares is there, and stops it at the first other key that is not
("Script attempted to access a non local key"), keeping the writes made before: no
rollback. A script that popped a job off its line and was then stopped at the job's
hash would lose the job. Corral's scripts read every key they write before the first
write (see ``common.lua``), so a stopped script leaves the slot as it found it and is
simply tried again.

The test builds a queue that uses every kind of key (lines, groups, limits, delayed,
leased, finished, outbox), moves the slot's keys in the worst order (job hashes first)
and, at each step, calls every transition: each either does its work or changes nothing.
Then the slot finishes moving and every job is found in exactly the place its state
names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest
import redis
from chaos.topology import ClusterProcs, RedisProc

from corral.backends.base import Completion, QueueLimits, Retention
from corral.backends.flow_records import FlowEdge, FlowJob, OnFailure
from corral.backends.records import JobState
from corral.backends.redis import RedisBackend
from corral.errors import CorralError
from tests.contract.conftest import new_job

pytestmark = pytest.mark.slow

QUEUE = "moving"
BASE = f"corral:{{{QUEUE}}}:"
KEEP = Retention()
LEASE = 60_000


def _read_slot(node: RedisProc, slot: int, asking: bool) -> dict[str, Any]:
    """Every key of ``slot`` on ``node`` with its content (ASKING before each read on
    the importing side, which would otherwise redirect it)."""

    def replies(pipe: Any) -> list[Any]:
        got = pipe.execute()
        return got[1::2] if asking else got

    with redis.Redis(port=node.port, decode_responses=True) as client:
        keys = client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100_000)
        pipe = client.pipeline(transaction=False)
        for key in keys:
            if asking:
                pipe.execute_command("ASKING")
            pipe.type(key)
        kinds = replies(pipe)
        pipe = client.pipeline(transaction=False)
        for key, kind in zip(keys, kinds, strict=True):
            if asking:
                pipe.execute_command("ASKING")
            if kind == "hash":
                pipe.hgetall(key)
            elif kind == "list":
                pipe.lrange(key, 0, -1)
            elif kind == "zset":
                pipe.zrange(key, 0, -1, withscores=True)
            elif kind == "set":
                pipe.smembers(key)
            else:
                pipe.get(key)
        return dict(zip(keys, replies(pipe), strict=True))


def _snapshot(*sides: tuple[RedisProc, bool], slot: int) -> dict[str, Any]:
    """The slot's keys on every side (node, importing); no key may be on two."""
    state: dict[str, Any] = {}
    for node, importing in sides:
        keys = _read_slot(node, slot, importing)
        assert not set(state) & set(keys), "a key on both sides"
        state.update(keys)
    # History counters are keyed by the clock: what they count is not the point here.
    return {k: v for k, v in state.items() if ":hm:" not in k and ":hq:" not in k}


def _check_places(state: dict[str, Any]) -> dict[str, str]:
    """Every job is in exactly the set its state names; returns id -> state."""
    jobs = {k[len(BASE) + 2 :]: v for k, v in state.items() if k.startswith(BASE + "j:")}
    members: dict[str, list[str]] = {}

    def add(place: str, ids: Any) -> None:
        for job_id in ids:
            members.setdefault(job_id, []).append(place)

    add("waiting", state.get(BASE + "fifo", []))
    add("waiting", [m for m, _ in state.get(BASE + "waiting", [])])
    for key, value in state.items():
        if key.startswith(BASE + "g:"):
            add("waiting", [m for m, _ in value])
    for place in ("active", "delayed", "completed", "failed", "cancelled", "blocked"):
        add(place, [m for m, _ in state.get(BASE + place, [])])
    # A job added waiting stores no state (add_job.lua): a hash with a name is waiting.
    states = {job_id: fields.get("state", "waiting") for job_id, fields in jobs.items()}
    for job_id, fields in jobs.items():
        assert members.get(job_id) == [states[job_id]], (job_id, fields, members.get(job_id))
    strays = set(members) - set(jobs)
    assert not strays, f"ids without a job: {strays}"
    return states


async def _build(backend: RedisBackend) -> dict[str, list[tuple[str, str]]]:
    """A queue using every kind of key; returns leases by what they are kept for."""
    await backend.set_limits(
        QUEUE,
        QueueLimits(
            max_active=1000,
            rate_max=10_000,
            rate_window=60,
            group_max_active=3,
            group_rate_max=3,
            group_rate_window=60,
        ),
    )
    jobs = [new_job(f"f{n}") for n in range(40)]
    jobs += [new_job(f"p{n}", priority=3) for n in range(4)]
    # Last in line: every key the scripts declare exists (else none runs mid-move).
    jobs += [new_job(f"q{n}", priority=-2) for n in range(5)]
    jobs += [new_job(f"{g}{n}", group=g) for g in ("ga", "gb", "gc") for n in range(5)]
    jobs += [new_job(f"d{n}", delay_ms=1) for n in range(4)]
    jobs += [new_job(f"l{n}", delay_ms=3_600_000) for n in range(2)]
    await backend.enqueue(QUEUE, jobs)
    await asyncio.sleep(0.01)
    claimed, _ = await backend.claim(QUEUE, 30, LEASE, "w0")
    leases = [(job.id, job.token) for job in claimed]
    # Groups at their cap (3 running) wait in 'gcapped'; one that finished a job but
    # started 3 this minute is parked by its rate in 'gparked'.
    freed = next(lease for lease in leases if lease[0].startswith("gb"))
    leases.remove(freed)
    await backend.complete(QUEUE, [Completion(*freed, b"1")], KEEP)
    leases += [(job.id, job.token) for job in (await backend.claim(QUEUE, 2, LEASE, "w0"))[0]]
    stale, _ = await backend.claim(QUEUE, 3, 1, "w-dead")  # leases that expire
    assert len(leases) >= 12 and len(stale) == 3
    # Grouped jobs keep running, so their groups stay held.
    leases = [lease for lease in leases if not lease[0].startswith("g")]
    done, dead, cancel = leases[:2], leases[2:4], leases[4]
    await backend.complete(QUEUE, [Completion(i, t, b"1", "completed") for i, t in done], KEEP)
    for job_id, token in dead:
        await backend.fail(QUEUE, job_id, token, b'{"type":"E"}', None, KEEP, notify="failed")
    await backend.cancel(QUEUE, cancel[0])
    await backend.abort(QUEUE, cancel[0], cancel[1], b"{}")
    # A schedule that fired once, and a worker serving the queue.
    await backend.upsert_schedule(QUEUE, "tick", b"{}", 1, keep=False)
    assert await backend.fire_schedule(QUEUE, "tick", 1, 2, new_job("s0"))
    await backend._mark_serving("w0", [QUEUE], 600_000)
    # A flow: two roots (first in line), their dependents blocked, one waiting on a root
    # that stays last in line.
    edge = partial(FlowEdge, queue=QUEUE)
    await backend.add_flow(
        "fl",
        [
            FlowJob(QUEUE, new_job("r0", priority=9), name="r0"),
            FlowJob(QUEUE, new_job("r1", priority=9), name="r1"),
            FlowJob(QUEUE, new_job("r2", priority=-9), name="r2"),
            FlowJob(QUEUE, new_job("c0"), (edge("r0", job_id="r0"),)),
            FlowJob(QUEUE, new_job("c1"), (edge("r0", job_id="r0", on_failure=OnFailure.SKIP),)),
            FlowJob(QUEUE, new_job("c2"), (edge("r1", job_id="r1"),)),
            FlowJob(QUEUE, new_job("c3"), (edge("r2", job_id="r2"),)),
            # Its outcome waits in this queue's handoff set for a dependent elsewhere.
            FlowJob(QUEUE, new_job("r3", priority=9), name="r3"),
            FlowJob("elsewhere", new_job("x0"), (edge("r3", job_id="r3"),)),
        ],
    )
    roots = [(job.id, job.token) for job in (await backend.claim(QUEUE, 3, LEASE, "w0"))[0]]
    assert sorted(i for i, _ in roots) == ["r0", "r1", "r3"]
    r3 = next(lease for lease in roots if lease[0] == "r3")
    roots.remove(r3)
    await backend.complete(QUEUE, [Completion(*r3, b"3")], KEEP)
    await backend.enqueue(QUEUE, [new_job(f"gd{n}", group="gd") for n in range(3)])  # in line
    return {
        "freed": [freed],
        "done": done,
        "dead": dead,
        "complete": leases[5:7],
        "retry": leases[7:9],
        "fail": leases[9:10],
        "release": leases[10:12],
        "failed": dead[:1],
        "roots": sorted(roots),
        "r3": [r3],
    }


async def _ids(backend: RedisBackend) -> set[str]:
    counts = await backend.counts(QUEUE)
    ids: set[str] = set()
    for state in JobState:
        n = counts.get(state.value, 0)
        ids.update(job.id for job in await backend.list_jobs(QUEUE, state, 0, n))
    return ids


@pytest.mark.parametrize("order", ["jobs first", "lines first"])
async def test_no_script_stopped_by_a_migration_leaves_a_change(
    redis_cluster: ClusterProcs, redis_cluster_url: str, order: str
) -> None:
    backend = RedisBackend(redis_cluster_url, reconnect_timeout=0.2)
    await backend.connect()
    slot = redis_cluster.slot_of(BASE + "meta")
    source = redis_cluster.owner(BASE + "meta")
    target = next(n for n in redis_cluster.primary_nodes() if n is not source)
    added = iter(range(10_000))
    stored: set[str] = set()

    async def enqueue() -> None:
        jobs = [
            new_job(f"n{next(added)}"),
            new_job(f"n{next(added)}", group="ga"),
            new_job(f"n{next(added)}", priority=2),
        ]
        await backend.enqueue(QUEUE, jobs)
        stored.update(job.id for job in jobs)

    sides = ((source, False), (target, True))
    tick = [2]  # the schedule's pending tick: moves on only when one is fired

    async def fire() -> None:
        job = new_job(f"s{tick[0]}", group="gc")
        assert await backend.fire_schedule(QUEUE, "tick", tick[0], tick[0] + 1, job)
        stored.add(job.id)
        tick[0] += 1

    try:
        leases = await _build(backend)
        stored.update(await _ids(backend))
        await asyncio.sleep(0.01)  # the stale leases run out
        ops: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("enqueue", enqueue),
            ("claim", lambda: backend.claim(QUEUE, 4, LEASE, "w1")),
            (
                "complete",
                lambda: backend.complete(
                    QUEUE,
                    [Completion(i, t, b"2", "completed") for i, t in leases["complete"]],
                    Retention(count=1),
                ),
            ),
            (
                "retry later",
                lambda: backend.fail(QUEUE, *leases["retry"][0], b'{"type":"E"}', 5, KEEP),
            ),
            (
                "retry now",
                lambda: backend.fail(QUEUE, *leases["retry"][1], b'{"type":"E"}', 0, KEEP),
            ),
            (
                "dead-letter",
                lambda: backend.fail(
                    QUEUE,
                    *leases["fail"][0],
                    b'{"type":"E"}',
                    None,
                    Retention(count=1),
                    notify="failed",
                ),
            ),
            ("release", lambda: backend.release(QUEUE, leases["release"])),
            ("reap", lambda: backend.reap_stalled(QUEUE, 5, KEEP, KEEP)),
            ("retry failed", lambda: backend.retry(QUEUE, [leases["failed"][0][0]])),
            ("cancel", lambda: backend.cancel(QUEUE, "f39")),
            ("promote", lambda: backend.promote(QUEUE, "l0")),
            ("schedule", fire),
            (
                "flow: a root completes",
                lambda: backend.complete(QUEUE, [Completion(*leases["roots"][0], b"7")], KEEP),
            ),
            (
                "flow: a root fails",
                lambda: backend.fail(QUEUE, *leases["roots"][1], b'{"type":"E"}', None, KEEP),
            ),
            ("flow: a blocked job is cancelled", lambda: backend.cancel(QUEUE, "c3")),
        ]
        before = await asyncio.to_thread(_snapshot, *sides, slot=slot)
        _check_places(before)
        with redis_cluster.client(source) as src, redis_cluster.client(target) as dst:
            dst.execute_command(
                "CLUSTER", "SETSLOT", slot, "IMPORTING", redis_cluster.node_id(source)
            )
            src.execute_command(
                "CLUSTER", "SETSLOT", slot, "MIGRATING", redis_cluster.node_id(target)
            )
            keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100_000)
            # The flow's dependents move before its roots: a root ending mid-move must
            # tell a dependent that has left.
            jobs = sorted(
                (k for k in keys if k.startswith(BASE.encode() + b"j")),
                key=lambda k: (b":j:r" in k) - (b":j:c" in k),
            )
            lines = [k for k in keys if k not in jobs]
            first, then = (jobs, lines) if order == "jobs first" else (lines, jobs)
            stages = [first[: len(first) // 2], first[len(first) // 2 :], then[: len(then) // 2]]
            stopped: dict[str, int] = {}
            ran: set[str] = set()
            for stage in stages:
                src.execute_command(
                    "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *stage
                )
                for name, op in ops:
                    before = await asyncio.to_thread(_snapshot, *sides, slot=slot)
                    try:
                        await op()
                    except CorralError:
                        after = await asyncio.to_thread(_snapshot, *sides, slot=slot)
                        assert after == before, f"{name} was stopped half-way"
                        stopped[name] = stopped.get(name, 0) + 1
                    else:  # done, perhaps after a try that was stopped
                        after = await asyncio.to_thread(_snapshot, *sides, slot=slot)
                        ran.add(name)
                    _check_places(after)
            # Scripts both ran and were stopped mid-move (else this proves little).
            assert len(stopped) >= 8 and "claim" in ran, (stopped, ran)
        await asyncio.to_thread(redis_cluster.move_slot, slot, target)
        # Every transition works again, and every job is where its state says.
        for _, op in ops:
            await op()
        # Dependents a move kept from hearing in the same step heard through the handoff.
        assert await backend.pass_handoffs(QUEUE) >= 1
        heard = {"c0": "waiting", "c1": "waiting", "c2": "failed", "c3": "cancelled"}
        for job_id, state in heard.items():
            assert (await backend.get(QUEUE, job_id)).state == state, job_id  # type: ignore[union-attr]
        assert (await backend.get("elsewhere", "x0")).state == "waiting"  # type: ignore[union-attr]
        states = _check_places(await asyncio.to_thread(_snapshot, (target, False), slot=slot))
        # None missing but those retention removed (keep 1 completed, 1 failed).
        finished = {
            i
            for kind in ("freed", "done", "dead", "complete", "fail", "roots", "r3")
            for i, _ in leases[kind]
        }
        assert stored - set(states) <= finished
    finally:
        await backend.close()
        if redis_cluster.slot_owner(slot) is not source:
            await asyncio.to_thread(redis_cluster.move_slot, slot, source)
