"""Groups (tenants), per-group limits, dedupe keys and debounce: the backend rules."""

from __future__ import annotations

import asyncio

import orjson

from corral.backends.base import Backend, Completion, JobState, QueueLimits, Retention
from tests.contract.conftest import claim_one, enqueue, new_job

Q = "q"
LEASE = 30_000
KEEP = Retention()


async def claim_ids(backend: Backend, n: int) -> list[str]:
    """Claim one job at a time, n times (stops early when nothing is claimable)."""
    ids = []
    for _ in range(n):
        jobs, _ = await backend.claim(Q, 1, LEASE, "w1")
        if not jobs:
            break
        ids.append(jobs[0].id)
    return ids


async def test_groups_and_ungrouped_jobs_take_turns(backend: Backend) -> None:
    await enqueue(backend, Q, "a1", "a2", "a3", "a4", "a5", group="A")
    await enqueue(backend, Q, "b1", "b2", group="B")
    await enqueue(backend, Q, "u1")
    assert await claim_ids(backend, 10) == ["u1", "a1", "b1", "a2", "b2", "a3", "a4", "a5"]


async def test_a_batch_claim_takes_turns_too(backend: Backend) -> None:
    await enqueue(backend, Q, *(f"a{i}" for i in range(50)), group="A")
    await enqueue(backend, Q, "b1", "b2", group="B")
    jobs, _ = await backend.claim(Q, 4, LEASE, "w1")
    assert sorted(j.id for j in jobs) == ["a0", "a1", "b1", "b2"]


async def test_a_new_group_goes_to_the_back_of_the_line(backend: Backend) -> None:
    await enqueue(backend, Q, "a1", "a2", "a3", group="A")
    await enqueue(backend, Q, "b1", "b2", group="B")
    assert await claim_ids(backend, 1) == ["a1"]
    await enqueue(backend, Q, "c1", group="C")
    assert await claim_ids(backend, 5) == ["b1", "a2", "c1", "b2", "a3"]


async def test_priority_holds_within_a_group(backend: Backend) -> None:
    await enqueue(backend, Q, "low", group="A")
    await enqueue(backend, Q, "high", group="A", priority=5)
    await enqueue(backend, Q, "mid", group="A", priority=1)
    assert await claim_ids(backend, 3) == ["high", "mid", "low"]


async def test_grouped_jobs_are_counted_listed_and_recorded(backend: Backend) -> None:
    await enqueue(backend, Q, "u1")
    await enqueue(backend, Q, "a1", group="A")
    await enqueue(backend, Q, "a2", group="A", priority=3)
    assert (await backend.counts(Q))["waiting"] == 3
    listed = await backend.list_jobs(Q, JobState.WAITING, 0, 10)
    assert [r.id for r in listed] == ["a2", "u1", "a1"]  # priority, then FIFO
    assert [r.id for r in await backend.list_jobs(Q, JobState.WAITING, 1, 1)] == ["u1"]
    record = await backend.get(Q, "a1")
    assert record is not None and record.group == "A"
    plain = await backend.get(Q, "u1")
    assert plain is not None and plain.group is None


async def test_cancel_remove_and_drain_take_grouped_jobs_out_of_line(backend: Backend) -> None:
    await enqueue(backend, Q, "a1", "a2", "a3", group="A")
    await enqueue(backend, Q, "b1", group="B")
    assert await backend.cancel(Q, "a1") == JobState.CANCELLED
    assert await backend.remove(Q, "b1")
    assert await claim_ids(backend, 1) == ["a2"]
    assert await backend.drain(Q, False) == 1
    assert (await backend.counts(Q))["waiting"] == 0
    assert await claim_ids(backend, 5) == []


async def test_delayed_and_retried_grouped_jobs_rejoin_their_group(backend: Backend) -> None:
    await enqueue(backend, Q, "a1", group="A")
    job = await claim_one(backend, Q)
    assert await backend.fail(Q, job.id, job.token, b"{}", 0, KEEP)  # retry at once
    assert await claim_ids(backend, 1) == ["a1"]
    await enqueue(backend, Q, "a2", group="A", delay_ms=50)
    await asyncio.sleep(0.1)
    assert await claim_ids(backend, 1) == ["a2"]


async def test_released_grouped_job_is_claimable_again(backend: Backend) -> None:
    await backend.set_limits(Q, QueueLimits(group_max_active=1))
    await enqueue(backend, Q, "a1", "a2", group="A")
    job = await claim_one(backend, Q)
    assert await claim_ids(backend, 1) == []  # A is at its cap
    assert await backend.release(Q, [(job.id, job.token)]) == 1
    assert await claim_ids(backend, 1) == ["a1"]


async def test_group_cap_holds_each_group_separately(backend: Backend) -> None:
    await backend.set_limits(Q, QueueLimits(group_max_active=1))
    await enqueue(backend, Q, "a1", "a2", group="A")
    await enqueue(backend, Q, "b1", "b2", group="B")
    await enqueue(backend, Q, "u1", "u2")
    jobs, _ = await backend.claim(Q, 10, LEASE, "w1")
    assert sorted(j.id for j in jobs) == ["a1", "b1", "u1", "u2"]  # ungrouped are not capped
    a1 = next(j for j in jobs if j.id == "a1")
    assert await backend.complete(Q, [Completion("a1", a1.token, b"1")], KEEP) == [True]
    assert await claim_ids(backend, 5) == ["a2"]


async def test_raising_the_group_cap_lets_held_groups_run(backend: Backend) -> None:
    await backend.set_limits(Q, QueueLimits(group_max_active=1))
    await enqueue(backend, Q, "a1", "a2", group="A")
    assert await claim_ids(backend, 5) == ["a1"]
    await backend.set_limits(Q, QueueLimits())
    assert await claim_ids(backend, 5) == ["a2"]


async def test_group_rate_limits_each_group_and_hints_when_to_return(backend: Backend) -> None:
    await backend.set_limits(Q, QueueLimits(group_rate_max=2, group_rate_window=0.3))
    await enqueue(backend, Q, "a1", "a2", "a3", group="A")
    await enqueue(backend, Q, "b1", group="B")
    assert sorted(await claim_ids(backend, 10)) == ["a1", "a2", "b1"]
    jobs, due_in = await backend.claim(Q, 5, LEASE, "w1")
    assert jobs == []
    assert due_in is not None and 0 < due_in <= 300
    await asyncio.sleep(due_in / 1000 + 0.05)
    assert await claim_ids(backend, 5) == ["a3"]


async def test_group_limits_round_trip(backend: Backend) -> None:
    limits = QueueLimits(max_active=9, group_max_active=2, group_rate_max=5, group_rate_window=1.5)
    await backend.set_limits(Q, limits)
    assert await backend.limits(Q) == limits


async def test_dedupe_key_returns_the_unfinished_holder(backend: Backend) -> None:
    assert await backend.enqueue(Q, [new_job("j1", dedupe_key="k")]) == [None]
    assert await backend.enqueue(Q, [new_job("j2", dedupe_key="k")]) == ["j1"]
    assert await backend.get(Q, "j2") is None
    job = await claim_one(backend, Q)
    assert await backend.enqueue(Q, [new_job("j3", dedupe_key="k")]) == ["j1"]  # active
    await backend.complete(Q, [Completion(job.id, job.token, b"1")], KEEP)
    # Finished: the key is free again.
    assert await backend.enqueue(Q, [new_job("j4", dedupe_key="k")]) == [None]
    assert await backend.enqueue(Q, [new_job("j5", dedupe_key="k")]) == ["j4"]


async def test_a_job_record_carries_its_dedupe_key(backend: Backend) -> None:
    await backend.enqueue(Q, [new_job("keyed", dedupe_key="k:1"), new_job("plain")])
    keyed, plain = await backend.get(Q, "keyed"), await backend.get(Q, "plain")
    assert keyed is not None and keyed.dedupe_key == "k:1"
    assert plain is not None and plain.dedupe_key is None
    job = await claim_one(backend, Q)
    await backend.complete(Q, [Completion(job.id, job.token, b"1")], KEEP)
    done = await backend.get(Q, job.id)
    assert done is not None and done.dedupe_key == ("k:1" if job.id == "keyed" else None)


async def test_dedupe_within_one_call(backend: Backend) -> None:
    batch = [new_job("j1", dedupe_key="k"), new_job("j2", dedupe_key="k"), new_job("j3")]
    assert await backend.enqueue(Q, batch) == [None, "j1", None]


async def test_dedupe_window_holds_the_key_after_the_job_finished(backend: Backend) -> None:
    assert await backend.enqueue(Q, [new_job("j1", dedupe_key="k", dedupe_ms=300)]) == [None]
    job = await claim_one(backend, Q)
    await backend.complete(Q, [Completion(job.id, job.token, b"1")], KEEP)
    assert await backend.enqueue(Q, [new_job("j2", dedupe_key="k", dedupe_ms=300)]) == ["j1"]
    await asyncio.sleep(0.35)
    assert await backend.enqueue(Q, [new_job("j3", dedupe_key="k", dedupe_ms=300)]) == [None]


async def test_removed_holder_frees_its_key(backend: Backend) -> None:
    await backend.enqueue(Q, [new_job("j1", dedupe_key="k")])
    assert await backend.remove(Q, "j1")
    assert await backend.enqueue(Q, [new_job("j2", dedupe_key="k")]) == [None]


async def test_same_id_wins_over_dedupe(backend: Backend) -> None:
    await backend.enqueue(Q, [new_job("j1")])
    assert await backend.enqueue(Q, [new_job("j1", dedupe_key="k")]) == ["j1"]
    # The refused add took no key.
    assert await backend.enqueue(Q, [new_job("j2", dedupe_key="k")]) == [None]


async def test_debounce_replaces_the_waiting_job_and_pushes_it_back(backend: Backend) -> None:
    first = new_job("j1", data=b"[[1],{}]", dedupe_key="k", debounce_ms=400)
    assert await backend.enqueue(Q, [first]) == [None]
    record = await backend.get(Q, "j1")
    assert record is not None and record.state is JobState.DELAYED
    first_run_at = record.run_at
    assert first_run_at is not None
    await asyncio.sleep(0.2)
    second = new_job("j2", data=b"[[2],{}]", dedupe_key="k", debounce_ms=400)
    assert await backend.enqueue(Q, [second]) == ["j1"]
    assert await backend.get(Q, "j2") is None
    record = await backend.get(Q, "j1")
    assert record is not None and record.data == b"[[2],{}]"
    assert record.run_at is not None and record.run_at >= first_run_at + 150
    await asyncio.sleep(0.3)  # the first add's start has passed: still not due
    assert await claim_ids(backend, 1) == []
    await asyncio.sleep(0.2)
    job = await claim_one(backend, Q)
    assert (job.id, job.data) == ("j1", b"[[2],{}]")
    # Started: a new add makes a new job.
    assert await backend.enqueue(Q, [new_job("j3", dedupe_key="k", debounce_ms=400)]) == [None]


async def test_debounce_of_a_waiting_grouped_job_moves_it_out_of_line(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", group="A")
    key_holder = new_job("d1", group="A", dedupe_key="k", debounce_ms=10_000)
    assert await backend.enqueue(Q, [key_holder]) == [None]
    await backend.promote(Q, "d1")
    again = new_job("d2", data=b'[["x"],{}]', group="A", dedupe_key="k", debounce_ms=10_000)
    assert await backend.enqueue(Q, [again]) == ["d1"]
    assert await claim_ids(backend, 5) == ["j1"]
    record = await backend.get(Q, "d1")
    assert record is not None and record.state is JobState.DELAYED
    assert orjson.loads(record.data) == [["x"], {}]


async def test_random_operations_keep_every_grouped_job_claimable(backend: Backend) -> None:
    """Whatever mix of moves a grouped job goes through, it stays countable and
    claimable exactly once per attempt, and no group stays held or in line after."""
    import random

    rng = random.Random(7)
    await backend.set_limits(Q, QueueLimits(group_max_active=2))
    leases: dict[str, str] = {}
    created = 0
    for step in range(300):
        move = rng.random()
        if move < 0.4:
            group = rng.choice(["", "A", "B", "C"])
            await enqueue(backend, Q, f"j{step}", group=group, priority=rng.randint(-2, 2))
            created += 1
        elif move < 0.6:
            jobs, _ = await backend.claim(Q, rng.randint(1, 4), LEASE, "w1")
            for job in jobs:
                assert job.id not in leases, f"{job.id} claimed twice"
                leases[job.id] = job.token
        elif leases and move < 0.75:
            job_id = rng.choice(sorted(leases))
            token = leases.pop(job_id)
            await backend.complete(Q, [Completion(job_id, token, b"1")], KEEP)
        elif leases and move < 0.85:
            job_id = rng.choice(sorted(leases))
            await backend.fail(Q, job_id, leases.pop(job_id), b"{}", 0, KEEP)  # retry now
        elif leases and move < 0.92:
            job_id = rng.choice(sorted(leases))
            await backend.release(Q, [(job_id, leases.pop(job_id))])
        else:
            waiting = await backend.list_jobs(Q, JobState.WAITING, 0, 100)
            if waiting:
                await backend.cancel(Q, rng.choice(waiting).id)
    counts = await backend.counts(Q)
    assert counts["active"] == len(leases)
    assert len(await backend.list_jobs(Q, JobState.WAITING, 0, 1000)) == counts["waiting"]
    await _finish_all(backend, leases)
    counts = await backend.counts(Q)
    assert counts["waiting"] == counts["active"] == 0
    assert counts["completed"] + counts["cancelled"] == created
    assert await _group_bookkeeping(backend) == []


async def _finish_all(backend: Backend, leases: dict[str, str]) -> None:
    """Complete what is held, claim again, until nothing is claimable (within the cap)."""
    while True:
        for job_id, token in list(leases.items()):
            await backend.complete(Q, [Completion(job_id, token, b"1")], KEEP)
            del leases[job_id]
        jobs, _ = await backend.claim(Q, 10, LEASE, "w1")
        if not jobs:
            return
        leases.update((job.id, job.token) for job in jobs)


async def _group_bookkeeping(backend: Backend) -> list[str]:
    """What the store still holds about groups (nothing, once no grouped job waits or
    runs): Redis keys of the group structures, or rows of SQLite's groups table."""
    from corral.backends.redis import RedisBackend
    from corral.backends.sqlite import SQLiteBackend

    if isinstance(backend, RedisBackend):
        client = backend._client_or_fail()
        base = backend._k(Q).base
        names = ["gw", "groups", "gactive", "gcapped", "gparked", "g:A", "g:B", "g:C"]
        return [n for n in names if await client.exists(base + n)]
    assert isinstance(backend, SQLiteBackend)
    rows = await backend._s().read(lambda conn: conn.execute("SELECT * FROM groups").fetchall())
    return [str(r) for r in rows]
