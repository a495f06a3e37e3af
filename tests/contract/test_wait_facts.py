"""Backend.wait_facts and the blockers worded from them: each kind of blocker produced
by a real situation (real claims, real limits, real worker registrations)."""

from __future__ import annotations

import asyncio
import re

import pytest

from corral.backends.base import (
    KEEP_ALL,
    Backend,
    Completion,
    JobState,
    QueueLimits,
    WaitFacts,
    WorkerInfo,
)
from corral.blockers import Blocker, blockers
from tests.contract.conftest import claim_one, enqueue

Q = "emails"
TTL = 60_000


def worker(worker_id: str = "host:1:aa", queues: tuple[str, ...] = (Q,)) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id,
        host="host",
        pid=1,
        queues=list(queues),
        concurrency=1,
        started_at=0,
        last_seen=0,
    )


async def facts_of(backend: Backend, job_id: str) -> WaitFacts:
    facts = await backend.wait_facts(Q, job_id)
    assert facts is not None
    return facts


async def kinds(backend: Backend, job_id: str) -> list[str]:
    return [b.kind for b in blockers(await facts_of(backend, job_id))]


async def test_missing_job_has_no_facts(backend: Backend) -> None:
    assert await backend.wait_facts(Q, "nope") is None
    await enqueue(backend, Q, "j1")
    assert await backend.wait_facts(Q, "nope") is None


async def test_a_free_job_first_in_line_has_no_blocker(backend: Backend) -> None:
    await backend.register_worker(worker(), TTL)
    await enqueue(backend, Q, "j1")
    facts = await facts_of(backend, "j1")
    assert (facts.state, facts.position, facts.workers, facts.paused) == (
        JobState.WAITING,
        0,
        1,
        False,
    )
    assert (facts.rate, facts.max_active, facts.group) == (None, None, None)
    assert blockers(facts) == []


async def test_paused_queue(backend: Backend) -> None:
    await backend.register_worker(worker(), TTL)
    await enqueue(backend, Q, "j1")
    await backend.set_paused(Q, True)
    assert blockers(await facts_of(backend, "j1")) == [
        Blocker("paused", "the queue 'emails' is paused")
    ]
    await backend.set_paused(Q, False)
    assert await kinds(backend, "j1") == []


async def test_no_worker_listens_until_one_registers_for_the_queue(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    assert blockers(await facts_of(backend, "j1")) == [
        Blocker("no_worker", "no live worker listens on queue 'emails'")
    ]
    await backend.register_worker(worker("other:1:bb", ("reports",)), TTL)
    assert await kinds(backend, "j1") == ["no_worker"]
    await backend.register_worker(worker("host:1:aa", ("reports", Q)), TTL)
    assert (await facts_of(backend, "j1")).workers == 1
    assert await kinds(backend, "j1") == []
    await backend.unregister_worker("host:1:aa")
    assert await kinds(backend, "j1") == ["no_worker"]


async def test_concurrency_cap_full_with_a_claimed_job(backend: Backend) -> None:
    await backend.register_worker(worker(), TTL)
    await backend.set_limits(Q, QueueLimits(max_active=1))
    await enqueue(backend, Q, "j1", "j2")
    await claim_one(backend, Q)
    facts = await facts_of(backend, "j2")
    assert (facts.active, facts.max_active, facts.position) == (1, 1, 0)
    assert blockers(facts) == [
        Blocker("concurrency", "concurrency cap: 1 of 1 jobs of the queue are running")
    ]
    assert blockers(await facts_of(backend, "j1")) == []  # active: nothing holds it


async def test_rate_limit_hit_by_real_claims(backend: Backend) -> None:
    await backend.register_worker(worker(), TTL)
    await backend.set_limits(Q, QueueLimits(rate_max=2, rate_window=60))
    await enqueue(backend, Q, "j1", "j2", "j3")
    before = await backend.time_ms()
    await claim_one(backend, Q)
    await claim_one(backend, Q)
    after = await backend.time_ms()
    facts = await facts_of(backend, "j3")
    assert facts.rate is not None
    assert (facts.rate.count, facts.rate.max, facts.rate.window_ms) == (2, 2, 60_000)
    assert facts.rate.resets_at is not None
    assert before + 60_000 <= facts.rate.resets_at <= after + 60_000
    [blocker] = blockers(facts)
    assert blocker.kind == "rate_limit"
    assert re.fullmatch(
        r"rate limit: 2 of 2 jobs this minute; the window resets at \d\d:\d\d:\d\d UTC",
        blocker.message,
    ), blocker.message
    assert blocker.until is not None
    assert int(blocker.until.timestamp() * 1000) == facts.rate.resets_at
    # The claim agrees: nothing more starts in this window.
    assert (await backend.claim(Q, 1, 30_000, "w1"))[0] == []


async def test_rate_window_not_full_is_no_blocker(backend: Backend) -> None:
    await backend.register_worker(worker(), TTL)
    await backend.set_limits(Q, QueueLimits(rate_max=5, rate_window=1))
    await enqueue(backend, Q, "j1", "j2")
    await claim_one(backend, Q)
    facts = await facts_of(backend, "j2")
    assert facts.rate is not None and (facts.rate.count, facts.rate.max) == (1, 5)
    assert blockers(facts) == []


async def test_group_cap_full_with_a_claimed_job(backend: Backend) -> None:
    await backend.register_worker(worker(), TTL)
    await backend.set_limits(Q, QueueLimits(group_max_active=1))
    await enqueue(backend, Q, "a1", "a2", group="acme")
    await claim_one(backend, Q)
    facts = await facts_of(backend, "a2")
    assert (facts.group, facts.group_active, facts.group_max_active) == ("acme", 1, 1)
    assert blockers(facts) == [
        Blocker("group_cap", "group cap: 1 of 1 jobs of group 'acme' are running")
    ]
    # Another group is not held by acme's cap.
    await enqueue(backend, Q, "b1", group="beta")
    assert await kinds(backend, "b1") == []


async def test_group_rate_limit_hit_by_a_real_claim(backend: Backend) -> None:
    await backend.register_worker(worker(), TTL)
    await backend.set_limits(Q, QueueLimits(group_rate_max=1, group_rate_window=10))
    await enqueue(backend, Q, "a1", "a2", group="acme")
    await claim_one(backend, Q)
    facts = await facts_of(backend, "a2")
    assert facts.group_rate is not None
    assert (facts.group_rate.count, facts.group_rate.max) == (1, 1)
    [blocker] = blockers(facts)
    assert blocker.kind == "rate_limit"
    assert blocker.message.startswith("group 'acme' rate limit: 1 of 1 jobs in the last 10 s;")


async def test_delayed_job(backend: Backend) -> None:
    await backend.register_worker(worker(), TTL)
    await enqueue(backend, Q, "d1", delay_ms=90_000)
    facts = await facts_of(backend, "d1")
    assert facts.state is JobState.DELAYED and facts.position is None
    assert facts.run_at is not None and 0 < facts.run_at - facts.now <= 90_000
    [blocker] = blockers(facts)
    assert blocker.kind == "delayed"
    assert re.fullmatch(
        r"it is delayed until (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d UTC \(in 1 min \d+ s\)",
        blocker.message,
    ), blocker.message
    assert blocker.until is not None
    assert int(blocker.until.timestamp() * 1000) == facts.run_at


async def test_job_waiting_to_retry(backend: Backend) -> None:
    await enqueue(backend, Q, "r1")
    job = await claim_one(backend, Q)
    assert await backend.fail(Q, "r1", job.token, b'{"message": "x"}', 60_000, KEEP_ALL)
    # No worker left: the retry waits for its time and for a worker.
    assert await kinds(backend, "r1") == ["delayed", "no_worker"]
    assert blockers(await facts_of(backend, "r1"))[0].message.startswith("it waits to retry until ")


async def test_position_behind_other_jobs(backend: Backend) -> None:
    await backend.register_worker(worker(), TTL)
    await enqueue(backend, Q, *[f"j{i}" for i in range(5)])
    facts = await facts_of(backend, "j3")
    assert facts.position == 3
    assert blockers(facts) == [Blocker("position", "3 jobs are ahead of it in line")]
    await claim_one(backend, Q)
    assert blockers(await facts_of(backend, "j3")) == [
        Blocker("position", "2 jobs are ahead of it in line")
    ]


async def claim_order(backend: Backend) -> list[str]:
    order = []
    while jobs := (await backend.claim(Q, 1, 30_000, "w1"))[0]:
        order.append(jobs[0].id)
    return order


async def test_position_is_the_claim_order_across_priorities(backend: Backend) -> None:
    await enqueue(backend, Q, "p0a", "p0b")
    await enqueue(backend, Q, "hi", priority=5)
    await enqueue(backend, Q, "lo", priority=-1)
    await enqueue(backend, Q, "p0c")
    await enqueue(backend, Q, "hi2", priority=5)
    ids = ["p0a", "p0b", "hi", "lo", "p0c", "hi2"]
    positions = {i: (await facts_of(backend, i)).position for i in ids}
    order = await claim_order(backend)
    assert sorted(order) == sorted(ids)
    assert positions == {job_id: order.index(job_id) for job_id in ids}


async def test_position_is_the_claim_order_while_groups_take_turns(backend: Backend) -> None:
    await enqueue(backend, Q, "a1", "a2", "a3", group="a")
    await enqueue(backend, Q, "u1", "u2")
    await enqueue(backend, Q, "b1", group="b")
    await enqueue(backend, Q, "a4", group="a")
    ids = ["a1", "a2", "a3", "a4", "u1", "u2", "b1"]
    positions = {i: (await facts_of(backend, i)).position for i in ids}
    order = await claim_order(backend)
    assert sorted(order) == sorted(ids)
    assert positions == {job_id: order.index(job_id) for job_id in ids}


async def test_active_and_finished_jobs_have_no_blockers(backend: Backend) -> None:
    await backend.set_paused(Q, True)  # would block a waiting job
    await backend.set_paused(Q, False)
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    await backend.set_paused(Q, True)
    facts = await facts_of(backend, "j1")
    assert facts.state is JobState.ACTIVE and facts.position is None
    assert blockers(facts) == []
    assert await backend.complete(Q, [Completion("j1", job.token, b"1")], KEEP_ALL) == [True]
    assert blockers(await facts_of(backend, "j1")) == []


async def test_wait_facts_writes_nothing(backend: Backend) -> None:
    await backend.set_limits(Q, QueueLimits(rate_max=1, rate_window=0.05))
    await enqueue(backend, Q, "j1", "j2")
    await claim_one(backend, Q)
    before = await backend.counts(Q)
    await facts_of(backend, "j2")
    assert await backend.counts(Q) == before
    assert [j.id for j in await backend.list_jobs(Q, JobState.WAITING, 0, 10)] == ["j2"]


async def test_the_place_in_line_is_counted_up_to_a_bound(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "position_bound", 3)
    await enqueue(backend, Q, *[f"j{i}" for i in range(6)])
    await enqueue(backend, Q, "hi", priority=1)
    exact = await facts_of(backend, "j1")
    assert (exact.position, exact.position_at_least) == (2, False)
    for job_id in ("j2", "j5"):
        bounded = await facts_of(backend, job_id)
        assert (bounded.position, bounded.position_at_least) == (3, True)
    assert blockers(await facts_of(backend, "j5"))[-1].message == (
        "at least 3 jobs are ahead of it in line"
    )


async def test_a_worker_whose_registration_lapsed_no_longer_counts(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    await backend.register_worker(worker("gone:1:aa"), 30)  # no heartbeat after this
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while (await facts_of(backend, "j1")).workers:
        assert loop.time() < deadline, "the lapsed worker still counts"
        await asyncio.sleep(0.02)
    assert await kinds(backend, "j1") == ["no_worker"]
