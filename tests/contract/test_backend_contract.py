"""Backend conformance suite: the contract of :class:`corral.backends.base.Backend`.

Only protocol methods are used (never the store's own keys or tables), so every
test runs unchanged on every backend the ``backend`` fixture is parametrised with.
Timing tests use ~150 ms delays and generous upper bounds.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from corral.backends.base import Backend, Completion, JobState, Retention, WorkerInfo
from corral.errors import InvalidTransition, JobNotFound
from tests.contract.conftest import claim_one, enqueue, new_job

Q = "q"
LEASE = 30_000
KEEP = Retention()
ERR1 = b'{"type":"ValueError","message":"one"}'
ERR2 = b'{"type":"KeyError","message":"two"}'


async def _stop(task: asyncio.Task[object]) -> None:
    """Cancel a helper task the test gave up on, and reap it."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def state(backend: Backend, job_id: str, queue: str = Q) -> JobState | None:
    record = await backend.get(queue, job_id)
    return None if record is None else record.state


# -- 1. enqueue, counts, get -------------------------------------------------------------


async def test_enqueue_stores_waiting_job(backend: Backend) -> None:
    assert await backend.enqueue(Q, [new_job("j1")]) == [None]
    assert await state(backend, "j1") is JobState.WAITING


async def test_payload_bytes_round_trip_exactly(backend: Backend) -> None:
    # Every character JSON escapes, non-ASCII text and a 1 MB string: stored and
    # claimed byte for byte (the Redis backend ships a batch as one JSON document).
    data = orjson.dumps([['q"uote\\ \n\t\x00 ünïcode ✓ 😀', "x" * 1_000_000], {"k": 2**62}])
    options = orjson.dumps({"attempts": 3, "note": "ünï"})
    ids = [f"p{i}" for i in range(3)]
    await backend.enqueue(Q, [new_job(i, data=data, options=options, name="t.ü") for i in ids])
    jobs, _ = await backend.claim(Q, 3, LEASE, "w1")
    assert [(j.id, j.name, j.data, j.options) for j in jobs] == [
        (i, "t.ü", data, options) for i in ids
    ]


async def test_counts_per_state(backend: Backend) -> None:
    await enqueue(backend, Q, "w1", "w2", "w3")
    await enqueue(backend, Q, "d1", delay_ms=60_000)
    counts = await backend.counts(Q)
    assert counts == {
        "waiting": 3,
        "delayed": 1,
        "active": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
        "blocked": 0,
        "paused": 0,
    }


async def test_counts_follow_claim_and_complete(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", "j2")
    job = await claim_one(backend, Q)
    counts = await backend.counts(Q)
    assert (counts["waiting"], counts["active"]) == (1, 1)
    assert await backend.complete(Q, [Completion(job.id, job.token, b"1")], KEEP) == [True]
    counts = await backend.counts(Q)
    assert (counts["waiting"], counts["active"], counts["completed"]) == (1, 0, 1)


async def test_get_returns_stored_fields(backend: Backend) -> None:
    before = await backend.time_ms()
    await backend.enqueue(
        Q, [new_job("j1", name="t.add", data=b"[[1,2],{}]", priority=5, options=b'{"a":3}')]
    )
    after = await backend.time_ms()
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.id == "j1"
    assert record.queue == Q
    assert record.name == "t.add"
    assert record.data == b"[[1,2],{}]"
    assert record.priority == 5
    assert record.options == b'{"a":3}'
    assert record.state is JobState.WAITING
    assert record.attempts == 0
    assert record.stalls == 0
    assert record.created_at is not None
    assert before <= record.created_at <= after
    assert record.started_at is None
    assert record.finished_at is None
    assert record.result is None
    assert record.progress is None
    assert record.errors == []
    assert record.logs == []
    assert record.cancel_requested is False


async def test_get_missing_returns_none(backend: Backend) -> None:
    assert await backend.get(Q, "nope") is None


async def test_enqueue_same_id_is_idempotent(backend: Backend) -> None:
    assert await backend.enqueue(Q, [new_job("j1", data=b"[[1],{}]", priority=1)]) == [None]
    original = await backend.get(Q, "j1")
    again = new_job("j1", name="t.other", data=b"[[2],{}]", priority=9, delay_ms=60_000)
    assert await backend.enqueue(Q, [again]) == ["j1"]
    assert await backend.get(Q, "j1") == original
    assert (await backend.counts(Q))["delayed"] == 0


async def test_enqueue_reports_per_job_in_one_call(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    assert await backend.enqueue(Q, [new_job("j0"), new_job("j1"), new_job("j2")]) == [
        None,
        "j1",
        None,
    ]
    jobs, _ = await backend.claim(Q, 10, LEASE, "w1")
    assert [j.id for j in jobs] == ["j1", "j0", "j2"]


async def test_bulk_enqueue_2500_jobs(backend: Backend) -> None:
    ids = [f"j{i}" for i in range(2500)]
    assert await backend.enqueue(Q, [new_job(i) for i in ids]) == [None] * 2500
    assert (await backend.counts(Q))["waiting"] == 2500
    jobs, _ = await backend.claim(Q, 2500, LEASE, "w1")
    assert [j.id for j in jobs] == ids  # FIFO across the whole batch


# -- 2. claim ----------------------------------------------------------------------------


async def test_claim_priority_then_fifo(backend: Backend) -> None:
    priorities = [0, 5, -3, 5, 0, 10, -3, 0, 5, 10, 1, 0, -3, 1, 5, 0, 10, 1, -1000, 1000]
    jobs = [new_job(f"j{i}", priority=p) for i, p in enumerate(priorities)]
    # Half in one call, the rest one by one: the order must not depend on batching.
    await backend.enqueue(Q, jobs[:10])
    for job in jobs[10:]:
        await backend.enqueue(Q, [job])
    expected = [
        j.id for j in sorted(jobs, key=lambda j: (-j.priority, int(j.id[1:])))
    ]  # stable: FIFO inside one priority
    claimed, _ = await backend.claim(Q, 100, LEASE, "w1")
    assert [c.id for c in claimed] == expected


async def test_line_order_back_and_front(backend: Backend) -> None:
    # Within a priority: jobs handed back by a worker go to the front (in the order
    # given); retried and promoted jobs join the back. Both ends, for priority 0 (a
    # list on Redis) and for another priority (a sorted set).
    for prio in (0, 3):
        q = f"line{prio}"
        await backend.enqueue(q, [new_job(i, priority=prio) for i in ("a", "b", "c", "d", "e")])
        a, b = (await backend.claim(q, 2, LEASE, "w1"))[0]
        assert await backend.release(q, [(a.id, a.token), (b.id, b.token)]) == 2
        listed = [r.id for r in await backend.list_jobs(q, JobState.WAITING, 0, 10)]
        assert listed == ["a", "b", "c", "d", "e"]
        a, b, c = (await backend.claim(q, 3, LEASE, "w1"))[0]
        assert await backend.release(q, [(c.id, c.token), (a.id, a.token)]) == 2
        assert await backend.fail(q, "b", b.token, b"{}", 0, Retention()) is True  # retry now
        listed = [r.id for r in await backend.list_jobs(q, JobState.WAITING, 0, 10)]
        assert listed == ["c", "a", "d", "e", "b"]
        await backend.enqueue(q, [new_job("late", priority=prio, delay_ms=60_000)])
        assert await backend.promote(q, "late") is True
        claimed, _ = await backend.claim(q, 10, LEASE, "w1")
        assert [j.id for j in claimed] == ["c", "a", "d", "e", "b", "late"]


async def test_claim_respects_count(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", "j2", "j3", "j4", "j5")
    first, _ = await backend.claim(Q, 2, LEASE, "w1")
    assert [j.id for j in first] == ["j1", "j2"]
    second, _ = await backend.claim(Q, 2, LEASE, "w1")
    assert [j.id for j in second] == ["j3", "j4"]
    third, _ = await backend.claim(Q, 2, LEASE, "w1")
    assert [j.id for j in third] == ["j5"]


async def test_claimed_job_is_active_with_first_attempt(backend: Backend) -> None:
    await backend.enqueue(Q, [new_job("j1", name="t.add", data=b"[[1],{}]", options=b"{}")])
    job = await claim_one(backend, Q)
    assert job.id == "j1"
    assert job.queue == Q
    assert job.name == "t.add"
    assert job.data == b"[[1],{}]"
    assert job.options == b"{}"
    assert job.attempt == 1
    assert job.stalls == 0
    assert isinstance(job.token, str)
    assert job.token
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.ACTIVE
    assert record.attempts == 1
    assert record.started_at is not None


async def test_claim_tokens_are_unique(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", "j2", "j3")
    a, _ = await backend.claim(Q, 2, LEASE, "w1")
    b, _ = await backend.claim(Q, 1, LEASE, "w1")
    tokens = [j.token for j in a + b]
    assert len(set(tokens)) == 3


async def test_claim_empty_queue(backend: Backend) -> None:
    assert await backend.claim(Q, 5, LEASE, "w1") == ([], None)


# -- 3. delays ---------------------------------------------------------------------------


async def test_delayed_job_is_not_claimable_and_reports_due_in(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", delay_ms=10_000)
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.DELAYED
    assert record.run_at is not None
    assert record.created_at is not None
    assert 9_900 <= record.run_at - record.created_at <= 10_100
    jobs, due_in = await backend.claim(Q, 1, LEASE, "w1")
    assert jobs == []
    assert due_in is not None
    assert 8_000 <= due_in <= 10_000


async def test_delayed_job_is_claimed_once_due(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", delay_ms=150)
    jobs, due_in = await backend.claim(Q, 1, LEASE, "w1")
    assert jobs == []
    assert due_in is not None
    assert 0 <= due_in <= 150
    await asyncio.sleep(0.2)
    job = await claim_one(backend, Q)
    assert job.id == "j1"
    assert job.attempt == 1


async def test_run_at_in_the_past_is_waiting_at_once(backend: Backend) -> None:
    now = await backend.time_ms()
    await enqueue(backend, Q, "j1", run_at_ms=now - 1_000)
    assert await state(backend, "j1") is JobState.WAITING
    assert (await claim_one(backend, Q)).id == "j1"


async def test_run_at_wins_over_delay(backend: Backend) -> None:
    now = await backend.time_ms()
    await enqueue(backend, Q, "past", run_at_ms=now - 1_000, delay_ms=60_000)
    await enqueue(backend, Q, "future", run_at_ms=now + 60_000, delay_ms=1)
    assert await state(backend, "past") is JobState.WAITING
    future = await backend.get(Q, "future")
    assert future is not None
    assert future.state is JobState.DELAYED
    assert future.run_at == now + 60_000


async def test_promote_makes_delayed_job_claimable(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", delay_ms=60_000)
    assert await backend.promote(Q, "j1") is True
    assert await state(backend, "j1") is JobState.WAITING
    assert (await claim_one(backend, Q)).id == "j1"


async def test_promote_non_delayed_job_is_false(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    assert await backend.promote(Q, "j1") is False
    assert await backend.promote(Q, "missing") is False
    assert await state(backend, "j1") is JobState.WAITING


# -- 4. complete -------------------------------------------------------------------------


async def test_complete_with_current_token(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    assert await backend.complete(Q, [Completion("j1", job.token, b'{"ok":1}')], KEEP) == [True]
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert record.result == b'{"ok":1}'
    assert record.finished_at is not None
    assert record.started_at is not None
    assert record.finished_at >= record.started_at


async def test_complete_with_wrong_token_changes_nothing(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    before = await backend.get(Q, "j1")
    wrong = Completion("j1", job.token + "x", b"1")
    assert await backend.complete(Q, [wrong], KEEP) == [False]
    assert await backend.get(Q, "j1") == before
    # the real holder still can
    assert await backend.complete(Q, [Completion("j1", job.token, b"2")], KEEP) == [True]


async def test_complete_twice_second_is_false(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    assert await backend.complete(Q, [Completion("j1", job.token, b"1")], KEEP) == [True]
    assert await backend.complete(Q, [Completion("j1", job.token, b"2")], KEEP) == [False]
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.result == b"1"


async def test_complete_batch(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", "j2", "j3")
    jobs, _ = await backend.claim(Q, 3, LEASE, "w1")
    items = [
        Completion(jobs[0].id, jobs[0].token, b"10"),
        Completion(jobs[1].id, "stale", b"20"),
        Completion(jobs[2].id, jobs[2].token, b"30"),
    ]
    assert await backend.complete(Q, items, KEEP) == [True, False, True]
    r1, r2, r3 = [await backend.get(Q, i) for i in ("j1", "j2", "j3")]
    assert r1 is not None and r2 is not None and r3 is not None
    assert (r1.state, r1.result) == (JobState.COMPLETED, b"10")
    assert (r2.state, r2.result) == (JobState.ACTIVE, None)
    assert (r3.state, r3.result) == (JobState.COMPLETED, b"30")
    assert (await backend.counts(Q))["completed"] == 2


# -- 5. fail -----------------------------------------------------------------------------


async def test_fail_retry_now_goes_waiting_and_keeps_attempt(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    assert await backend.fail(Q, "j1", job.token, ERR1, 0, KEEP) is True
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.WAITING
    assert record.attempts == 1
    assert record.errors == [ERR1]
    again = await claim_one(backend, Q)
    assert again.attempt == 2
    assert again.token != job.token


async def test_fail_retry_later_is_delayed_then_claimable(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    assert await backend.fail(Q, "j1", job.token, ERR1, 150, KEEP) is True
    assert await state(backend, "j1") is JobState.DELAYED
    jobs, due_in = await backend.claim(Q, 1, LEASE, "w1")
    assert jobs == []
    assert due_in is not None
    assert 0 <= due_in <= 150
    await asyncio.sleep(0.2)
    again = await claim_one(backend, Q)
    assert again.id == "j1"
    assert again.attempt == 2


async def test_fail_without_retry_dead_letters_with_all_errors(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    first = await claim_one(backend, Q)
    assert await backend.fail(Q, "j1", first.token, ERR1, 0, KEEP) is True
    second = await claim_one(backend, Q)
    assert await backend.fail(Q, "j1", second.token, ERR2, None, KEEP) is True
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.FAILED
    assert record.errors == [ERR1, ERR2]
    assert record.attempts == 2
    assert record.finished_at is not None
    assert (await backend.counts(Q))["failed"] == 1
    assert await backend.claim(Q, 1, LEASE, "w1") == ([], None)


async def test_fail_without_counting_attempt(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    first = await claim_one(backend, Q)
    assert first.attempt == 1
    assert await backend.fail(Q, "j1", first.token, ERR1, 0, KEEP, count_attempt=False) is True
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.attempts == 0
    again = await claim_one(backend, Q)
    assert again.attempt == 1


async def test_fail_with_stale_token_is_false(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    before = await backend.get(Q, "j1")
    assert await backend.fail(Q, "j1", "not-" + job.token, ERR1, None, KEEP) is False
    assert await backend.get(Q, "j1") == before


# -- 6. leases, stalls, renew ------------------------------------------------------------


async def _claim_and_expire(backend: Backend, lease_ms: int = 100) -> str:
    job = await claim_one(backend, Q, lease_ms=lease_ms)
    await asyncio.sleep((lease_ms + 150) / 1000)
    return job.token


async def test_reap_requeues_expired_lease(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    await _claim_and_expire(backend)
    assert await backend.reap_stalled(Q, max_stalls=1) == (["j1"], [])
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.WAITING
    assert record.stalls == 1
    assert record.attempts == 0
    again = await claim_one(backend, Q)
    assert again.attempt == 1
    assert again.stalls == 1


async def test_reap_ignores_live_leases(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    await claim_one(backend, Q, lease_ms=LEASE)
    assert await backend.reap_stalled(Q, max_stalls=1) == ([], [])
    assert await state(backend, "j1") is JobState.ACTIVE


async def test_stale_token_is_fenced_after_reap(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    old = await _claim_and_expire(backend)
    assert await backend.reap_stalled(Q, max_stalls=1) == (["j1"], [])
    new = await claim_one(backend, Q, worker_id="w2")
    assert new.token != old
    snapshot = await backend.get(Q, "j1")

    assert await backend.complete(Q, [Completion("j1", old, b"1")], KEEP) == [False]
    assert await backend.fail(Q, "j1", old, ERR1, None, KEEP) is False
    assert await backend.update(Q, "j1", old, progress=b"50", logs=["x"]) is False
    assert await backend.renew(Q, [("j1", old)], LEASE) == (["j1"], [])
    assert await backend.get(Q, "j1") == snapshot

    assert await backend.update(Q, "j1", new.token, progress=b"50") is True
    assert await backend.renew(Q, [("j1", new.token)], LEASE) == ([], [])
    assert await backend.complete(Q, [Completion("j1", new.token, b"2")], KEEP) == [True]
    record = await backend.get(Q, "j1")
    assert record is not None
    assert (record.state, record.result) == (JobState.COMPLETED, b"2")


async def test_stale_token_cannot_fail_after_reap(backend: Backend) -> None:
    # fail() first, on its own: a fenced fail must not record the error either.
    await enqueue(backend, Q, "j1")
    old = await _claim_and_expire(backend)
    await backend.reap_stalled(Q, max_stalls=1)
    await claim_one(backend, Q, worker_id="w2")
    assert await backend.fail(Q, "j1", old, ERR1, 0, KEEP) is False
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.ACTIVE
    assert record.errors == []


async def test_stall_past_max_stalls_zero_fails(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    await _claim_and_expire(backend)
    assert await backend.reap_stalled(Q, max_stalls=0) == ([], ["j1"])
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.FAILED
    assert record.finished_at is not None
    assert len(record.errors) == 1
    assert orjson.loads(record.errors[0])["type"] == "Stalled"
    assert (await backend.counts(Q))["failed"] == 1


async def test_second_stall_past_max_stalls_one_fails(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    await _claim_and_expire(backend)
    assert await backend.reap_stalled(Q, max_stalls=1) == (["j1"], [])
    await _claim_and_expire(backend)
    assert await backend.reap_stalled(Q, max_stalls=1) == ([], ["j1"])
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.FAILED
    assert record.stalls == 2
    assert [orjson.loads(e)["type"] for e in record.errors] == ["Stalled"]


async def test_stalled_cancel_requested_job_ends_cancelled(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q, lease_ms=100)
    assert await backend.cancel(Q, "j1") is JobState.ACTIVE
    await asyncio.sleep(0.25)
    await backend.reap_stalled(Q, max_stalls=5)
    assert await state(backend, "j1") is JobState.CANCELLED
    assert await backend.claim(Q, 1, LEASE, "w1") == ([], None)
    assert await backend.complete(Q, [Completion("j1", job.token, b"1")], KEEP) == [False]


async def test_renew_extends_lease(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q, lease_ms=150)
    assert await backend.renew(Q, [("j1", job.token)], 2_000) == ([], [])
    await asyncio.sleep(0.3)  # past the original lease, well inside the renewed one
    assert await backend.reap_stalled(Q, max_stalls=0) == ([], [])
    assert await state(backend, "j1") is JobState.ACTIVE
    assert await backend.complete(Q, [Completion("j1", job.token, b"1")], KEEP) == [True]


async def test_renew_reports_lost_leases(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", "j2")
    a = await claim_one(backend, Q)
    b = await claim_one(backend, Q)
    assert await backend.complete(Q, [Completion("j2", b.token, b"1")], KEEP) == [True]
    lost, cancel = await backend.renew(
        Q, [("j1", a.token), ("j2", b.token), ("missing", "t")], LEASE
    )
    assert sorted(lost) == ["j2", "missing"]
    assert cancel == []
    assert await backend.renew(Q, [("j1", "stale")], LEASE) == (["j1"], [])
    assert await state(backend, "j1") is JobState.ACTIVE


# -- 7. release --------------------------------------------------------------------------


async def test_release_returns_jobs_without_spending_attempt(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", "j2", "j3")
    jobs, _ = await backend.claim(Q, 3, LEASE, "w1")
    j1, j2, j3 = jobs
    released = await backend.release(Q, [(j1.id, j1.token), (j2.id, "stale"), (j3.id, j3.token)])
    assert released == 2
    r1, r2 = await backend.get(Q, "j1"), await backend.get(Q, "j2")
    assert r1 is not None and r2 is not None
    assert (r1.state, r1.attempts) == (JobState.WAITING, 0)
    assert (r2.state, r2.attempts) == (JobState.ACTIVE, 1)
    again, _ = await backend.claim(Q, 5, LEASE, "w2")
    assert [(j.id, j.attempt) for j in again] == [("j1", 1), ("j3", 1)]
    # the released tokens are dead
    assert await backend.complete(Q, [Completion("j1", j1.token, b"1")], KEEP) == [False]


async def test_release_nothing(backend: Backend) -> None:
    assert await backend.release(Q, []) == 0


async def test_release_cancel_requested_job_ends_cancelled(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    assert await backend.cancel(Q, "j1") is JobState.ACTIVE
    assert await backend.release(Q, [("j1", job.token)]) == 1
    assert await state(backend, "j1") is JobState.CANCELLED
    assert await backend.claim(Q, 1, LEASE, "w1") == ([], None)


# -- 8. cancel ---------------------------------------------------------------------------


async def test_cancel_waiting_job(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", "j2")
    assert await backend.cancel(Q, "j1") is JobState.CANCELLED
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.CANCELLED
    assert record.finished_at is not None
    jobs, _ = await backend.claim(Q, 5, LEASE, "w1")
    assert [j.id for j in jobs] == ["j2"]
    assert (await backend.counts(Q))["cancelled"] == 1


async def test_cancel_delayed_job(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", delay_ms=100)
    assert await backend.cancel(Q, "j1") is JobState.CANCELLED
    assert await state(backend, "j1") is JobState.CANCELLED
    await asyncio.sleep(0.15)
    assert await backend.claim(Q, 5, LEASE, "w1") == ([], None)
    counts = await backend.counts(Q)
    assert (counts["delayed"], counts["cancelled"]) == (0, 1)


async def test_cancel_active_job_is_requested_then_aborted(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    seen: list[tuple[str, str]] = []
    called = asyncio.Event()

    def on_cancel(queue: str, job_id: str) -> None:
        seen.append((queue, job_id))
        called.set()

    stop = await backend.watch_cancellations([Q], on_cancel)
    try:
        assert await backend.cancel(Q, "j1") is JobState.ACTIVE
        await asyncio.wait_for(called.wait(), 2.0)
        assert seen == [(Q, "j1")]
    finally:
        await stop()

    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.ACTIVE
    assert record.cancel_requested is True
    assert await backend.renew(Q, [("j1", job.token)], LEASE) == ([], ["j1"])

    assert await backend.abort(Q, "j1", job.token, b'{"type":"Cancelled"}') is True
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.CANCELLED
    assert record.cancel_requested is False
    assert await backend.complete(Q, [Completion("j1", job.token, b"1")], KEEP) == [False]


async def test_abort_with_stale_token_is_false(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    assert await backend.abort(Q, "j1", job.token + "x", b"{}") is False
    assert await state(backend, "j1") is JobState.ACTIVE


async def test_fail_on_cancel_requested_job_ends_cancelled(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    assert await backend.cancel(Q, "j1") is JobState.ACTIVE
    assert await backend.fail(Q, "j1", job.token, ERR1, 0, KEEP) is True
    assert await state(backend, "j1") is JobState.CANCELLED
    assert await backend.claim(Q, 1, LEASE, "w1") == ([], None)


async def test_cancel_finished_job_is_invalid(backend: Backend) -> None:
    await enqueue(backend, Q, "done", "dead")
    done = await claim_one(backend, Q)
    dead = await claim_one(backend, Q)
    await backend.complete(Q, [Completion("done", done.token, b"1")], KEEP)
    await backend.fail(Q, "dead", dead.token, ERR1, None, KEEP)
    with pytest.raises(InvalidTransition):
        await backend.cancel(Q, "done")
    with pytest.raises(InvalidTransition):
        await backend.cancel(Q, "dead")
    assert await state(backend, "done") is JobState.COMPLETED
    assert await state(backend, "dead") is JobState.FAILED


async def test_cancel_missing_job(backend: Backend) -> None:
    with pytest.raises(JobNotFound):
        await backend.cancel(Q, "missing")


# -- 9. retry ----------------------------------------------------------------------------


async def test_retry_failed_job(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    await backend.fail(Q, "j1", job.token, ERR1, None, KEEP)
    assert await backend.retry(Q, ["j1"]) == [True]
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.state is JobState.WAITING
    assert record.attempts == 0
    assert (await backend.counts(Q))["failed"] == 0
    assert (await claim_one(backend, Q)).attempt == 1


async def test_retry_cancelled_job(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    await backend.cancel(Q, "j1")
    assert await backend.retry(Q, ["j1"]) == [True]
    assert await state(backend, "j1") is JobState.WAITING
    assert (await claim_one(backend, Q)).id == "j1"


async def test_retry_other_states_is_false(backend: Backend) -> None:
    await enqueue(backend, Q, "done", "waiting")
    done = await claim_one(backend, Q)
    await backend.complete(Q, [Completion("done", done.token, b"1")], KEEP)
    assert await backend.retry(Q, ["waiting", "done", "missing"]) == [False, False, False]
    assert await state(backend, "done") is JobState.COMPLETED
    assert await state(backend, "waiting") is JobState.WAITING


# -- 10. remove --------------------------------------------------------------------------


async def test_remove_waiting_job(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", "j2")
    assert await backend.remove(Q, "j1") is True
    assert await backend.get(Q, "j1") is None
    assert (await backend.counts(Q))["waiting"] == 1
    assert [r.id for r in await backend.list_jobs(Q, JobState.WAITING, 0, 10)] == ["j2"]
    jobs, _ = await backend.claim(Q, 5, LEASE, "w1")
    assert [j.id for j in jobs] == ["j2"]


async def test_remove_finished_job(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    await backend.complete(Q, [Completion("j1", job.token, b"1")], KEEP)
    assert await backend.remove(Q, "j1") is True
    assert await backend.get(Q, "j1") is None
    assert (await backend.counts(Q))["completed"] == 0
    assert await backend.list_jobs(Q, JobState.COMPLETED, 0, 10) == []


async def test_remove_active_job_is_invalid(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    await claim_one(backend, Q)
    with pytest.raises(InvalidTransition):
        await backend.remove(Q, "j1")
    assert await state(backend, "j1") is JobState.ACTIVE


async def test_remove_missing_job(backend: Backend) -> None:
    assert await backend.remove(Q, "missing") is False


# -- 11. pause ---------------------------------------------------------------------------


async def test_paused_queue_yields_nothing(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    await backend.set_paused(Q, True)
    assert (await backend.counts(Q))["paused"] == 1
    jobs, _ = await backend.claim(Q, 5, LEASE, "w1")
    assert jobs == []
    await enqueue(backend, Q, "j2")  # enqueue still works
    assert await state(backend, "j2") is JobState.WAITING
    await backend.set_paused(Q, False)
    assert (await backend.counts(Q))["paused"] == 0
    jobs, _ = await backend.claim(Q, 5, LEASE, "w1")
    assert [j.id for j in jobs] == ["j1", "j2"]


async def test_resume_wakes_wait_for_work(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    await backend.set_paused(Q, True)
    assert (await backend.claim(Q, 1, LEASE, "w1"))[0] == []
    # Use up any wake-up left by the enqueue so the resume is what wakes the waiter.
    await backend.wait_for_work([Q], 0.05)
    waiter = asyncio.create_task(backend.wait_for_work([Q], 5.0))
    try:
        await asyncio.sleep(0.1)
        assert not waiter.done(), "wait_for_work returned while the queue was paused"
        started = time.monotonic()
        await backend.set_paused(Q, False)
        await asyncio.wait_for(waiter, 2.0)
        assert time.monotonic() - started < 1.0
    finally:
        await _stop(waiter)
    assert (await claim_one(backend, Q)).id == "j1"


# -- 12. wait_for_work -------------------------------------------------------------------


async def test_wait_for_work_wakes_on_enqueue(backend: Backend) -> None:
    started = time.monotonic()
    waiter = asyncio.create_task(backend.wait_for_work([Q, "other"], 5.0))
    try:
        await asyncio.sleep(0.1)
        assert not waiter.done(), "wait_for_work returned with nothing enqueued"
        await enqueue(backend, Q, "j1")
        await asyncio.wait_for(waiter, 2.0)
        assert time.monotonic() - started < 1.0
    finally:
        await _stop(waiter)


async def test_wait_for_work_wakes_for_any_listed_queue(backend: Backend) -> None:
    waiter = asyncio.create_task(backend.wait_for_work(["a", "b"], 5.0))
    try:
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await enqueue(backend, "b", "j1")
        await asyncio.wait_for(waiter, 2.0)
        assert time.monotonic() - started < 1.0
    finally:
        await _stop(waiter)


async def test_wait_for_work_times_out(backend: Backend) -> None:
    started = time.monotonic()
    await backend.wait_for_work([Q], 0.2)
    assert 0.15 <= time.monotonic() - started < 2.0


async def test_wait_and_claim_returns_the_job_that_woke_it(backend: Backend) -> None:
    stop = asyncio.Event()
    waiter = asyncio.create_task(backend.wait_and_claim([Q], 5.0, 5, LEASE, "w1", stop))
    try:
        await asyncio.sleep(0.1)
        assert not waiter.done(), "wait_and_claim returned with nothing enqueued"
        started = time.monotonic()
        await enqueue(backend, Q, "j1", "j2")
        jobs, due = await asyncio.wait_for(waiter, 2.0)
        assert time.monotonic() - started < 1.0
    finally:
        await _stop(waiter)
    assert [j.id for j in jobs] == ["j1", "j2"]
    assert due is None
    assert await state(backend, "j1") is JobState.ACTIVE
    assert await backend.complete(Q, [Completion("j1", jobs[0].token, b"1")], KEEP) == [True]


async def test_wait_and_claim_times_out_empty_with_next_due(backend: Backend) -> None:
    await enqueue(backend, Q, "later", delay_ms=60_000)
    await backend.wait_for_work([Q], 0.05)  # use up the wake-up the enqueue left
    started = time.monotonic()
    jobs, due = await backend.wait_and_claim([Q], 0.2, 5, LEASE, "w1", asyncio.Event())
    assert 0.15 <= time.monotonic() - started < 2.0
    assert jobs == []
    assert due is not None and 50_000 < due <= 60_000


async def test_wait_and_claim_stops_at_once_and_leases_nothing(backend: Backend) -> None:
    stop = asyncio.Event()
    waiter = asyncio.create_task(backend.wait_and_claim([Q], 10.0, 5, LEASE, "w1", stop))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    stop.set()
    jobs, _ = await asyncio.wait_for(waiter, 3.0)
    assert time.monotonic() - started < 1.0
    assert jobs == []
    assert (await backend.counts(Q))["active"] == 0
    # The stop does not leave a wake-up behind for the next wait of the same worker.
    started = time.monotonic()
    jobs, _ = await backend.wait_and_claim([Q], 0.3, 5, LEASE, "w1", asyncio.Event())
    assert jobs == [] and time.monotonic() - started >= 0.25


async def test_wait_and_claim_claims_only_the_first_queue(backend: Backend) -> None:
    stop = asyncio.Event()
    waiter = asyncio.create_task(backend.wait_and_claim(["a", "b"], 5.0, 5, LEASE, "w1", stop))
    try:
        await asyncio.sleep(0.1)
        await enqueue(backend, "b", "j1")
        jobs, _ = await asyncio.wait_for(waiter, 2.0)
    finally:
        await _stop(waiter)
    # Woken by queue b, it claimed from a (empty): the caller claims b itself.
    assert jobs == []
    assert await state(backend, "j1", "b") is JobState.WAITING


# -- 13. retention -----------------------------------------------------------------------


async def _complete_each(backend: Backend, ids: list[str], retention: Retention) -> None:
    for job_id in ids:
        job = await claim_one(backend, Q)
        assert job.id == job_id
        assert await backend.complete(Q, [Completion(job_id, job.token, b"1")], retention) == [True]
        await asyncio.sleep(0.005)  # distinct finish times


async def _fail_each(backend: Backend, ids: list[str], retention: Retention) -> None:
    for job_id in ids:
        job = await claim_one(backend, Q)
        assert job.id == job_id
        assert await backend.fail(Q, job_id, job.token, ERR1, None, retention) is True
        await asyncio.sleep(0.005)


async def test_completed_retention_by_count(backend: Backend) -> None:
    ids = ["j1", "j2", "j3", "j4", "j5"]
    await enqueue(backend, Q, *ids)
    await _complete_each(backend, ids, Retention(count=2))
    assert (await backend.counts(Q))["completed"] == 2
    assert [await backend.get(Q, i) for i in ids[:3]] == [None, None, None]
    assert [await state(backend, i) for i in ids[3:]] == [JobState.COMPLETED] * 2


async def test_completed_retention_by_age(backend: Backend) -> None:
    await enqueue(backend, Q, "old1", "old2", "new")
    await _complete_each(backend, ["old1", "old2"], KEEP)
    await asyncio.sleep(0.1)
    await _complete_each(backend, ["new"], Retention(max_age=0.05))
    assert await backend.get(Q, "old1") is None
    assert await backend.get(Q, "old2") is None
    assert await state(backend, "new") is JobState.COMPLETED
    assert (await backend.counts(Q))["completed"] == 1


async def test_failed_retention_by_count(backend: Backend) -> None:
    ids = ["j1", "j2", "j3", "j4", "j5"]
    await enqueue(backend, Q, *ids)
    await _fail_each(backend, ids, Retention(count=2))
    assert (await backend.counts(Q))["failed"] == 2
    assert [await backend.get(Q, i) for i in ids[:3]] == [None, None, None]
    assert [await state(backend, i) for i in ids[3:]] == [JobState.FAILED] * 2


async def test_failed_retention_by_age(backend: Backend) -> None:
    await enqueue(backend, Q, "old1", "old2", "new")
    await _fail_each(backend, ["old1", "old2"], KEEP)
    await asyncio.sleep(0.1)
    await _fail_each(backend, ["new"], Retention(max_age=0.05))
    assert await backend.get(Q, "old1") is None
    assert await backend.get(Q, "old2") is None
    assert await state(backend, "new") is JobState.FAILED
    assert (await backend.counts(Q))["failed"] == 1


async def test_retention_does_not_touch_other_states(backend: Backend) -> None:
    await enqueue(backend, Q, "done", "dead", "waiting")
    done = await claim_one(backend, Q)
    dead = await claim_one(backend, Q)
    assert (done.id, dead.id) == ("done", "dead")
    await backend.fail(Q, dead.id, dead.token, ERR1, None, KEEP)
    await backend.complete(Q, [Completion(done.id, done.token, b"1")], Retention(count=0))
    assert await backend.get(Q, done.id) is None
    assert await state(backend, dead.id) is JobState.FAILED
    assert await state(backend, "waiting") is JobState.WAITING


# -- 14. clean, drain --------------------------------------------------------------------


async def test_clean_removes_only_old_finished_jobs(backend: Backend) -> None:
    await enqueue(backend, Q, "old", "young")
    await _complete_each(backend, ["old"], KEEP)
    await asyncio.sleep(0.15)
    await _complete_each(backend, ["young"], KEEP)
    assert await backend.clean(Q, JobState.COMPLETED, 100, 1000) == 1
    assert await backend.get(Q, "old") is None
    assert await state(backend, "young") is JobState.COMPLETED
    assert await backend.clean(Q, JobState.FAILED, 0, 1000) == 0
    assert await state(backend, "young") is JobState.COMPLETED


async def test_clean_respects_limit(backend: Backend) -> None:
    await enqueue(backend, Q, "j1", "j2", "j3")
    await _complete_each(backend, ["j1", "j2", "j3"], KEEP)
    await asyncio.sleep(0.02)
    assert await backend.clean(Q, JobState.COMPLETED, 0, 2) == 2
    assert (await backend.counts(Q))["completed"] == 1


async def test_clean_large_batch(backend: Backend) -> None:
    n = 8_001  # more than fits in one Lua unpack() / one naive variadic call
    await backend.enqueue(Q, [new_job(f"j{i}") for i in range(n)])
    jobs, _ = await backend.claim(Q, n, LEASE, "w1")
    done = await backend.complete(Q, [Completion(j.id, j.token, b"1") for j in jobs], KEEP)
    assert done == [True] * n
    assert await backend.clean(Q, JobState.COMPLETED, 0, 10_000) == n
    assert (await backend.counts(Q))["completed"] == 0


async def test_clean_non_terminal_state_is_invalid(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    for bad in (JobState.WAITING, JobState.DELAYED, JobState.ACTIVE):
        with pytest.raises(InvalidTransition):
            await backend.clean(Q, bad, 0, 100)
    assert await state(backend, "j1") is JobState.WAITING


async def test_drain_waiting_only(backend: Backend) -> None:
    await enqueue(backend, Q, "w1", "w2", "w3")
    await enqueue(backend, Q, "d1", "d2", delay_ms=60_000)
    assert await backend.drain(Q, delayed=False) == 3
    assert [await backend.get(Q, i) for i in ("w1", "w2", "w3")] == [None] * 3
    assert [await state(backend, i) for i in ("d1", "d2")] == [JobState.DELAYED] * 2
    counts = await backend.counts(Q)
    assert (counts["waiting"], counts["delayed"]) == (0, 2)


async def test_drain_with_delayed(backend: Backend) -> None:
    await enqueue(backend, Q, "a1")
    active = await claim_one(backend, Q)
    await enqueue(backend, Q, "w1", "w2", "w3")
    await enqueue(backend, Q, "d1", "d2", delay_ms=60_000)
    assert await backend.drain(Q, delayed=True) == 5
    assert [await backend.get(Q, i) for i in ("w1", "w2", "w3", "d1", "d2")] == [None] * 5
    assert await state(backend, active.id) is JobState.ACTIVE
    counts = await backend.counts(Q)
    assert (counts["waiting"], counts["delayed"], counts["active"]) == (0, 0, 1)


async def test_drain_many_waiting_and_delayed(backend: Backend) -> None:
    await backend.enqueue(Q, [new_job(f"w{i}") for i in range(5_000)])
    await backend.enqueue(Q, [new_job(f"d{i}", delay_ms=60_000) for i in range(8_001)])
    assert await backend.drain(Q, delayed=True) == 13_001
    counts = await backend.counts(Q)
    assert (counts["waiting"], counts["delayed"]) == (0, 0)
    assert await backend.get(Q, "d8000") is None


# -- 15. list_jobs -----------------------------------------------------------------------


async def test_list_waiting_in_claim_order(backend: Backend) -> None:
    await backend.enqueue(
        Q,
        [
            new_job("a", priority=0),
            new_job("b", priority=5),
            new_job("c", priority=0),
            new_job("d", priority=-1),
            new_job("e", priority=5),
        ],
    )
    listed = [r.id for r in await backend.list_jobs(Q, JobState.WAITING, 0, 100)]
    assert listed == ["b", "e", "a", "c", "d"]
    assert all(
        r.state is JobState.WAITING for r in await backend.list_jobs(Q, JobState.WAITING, 0, 100)
    )
    claimed, _ = await backend.claim(Q, 100, LEASE, "w1")
    assert [j.id for j in claimed] == listed


async def test_list_delayed_by_due_time(backend: Backend) -> None:
    await enqueue(backend, Q, "late", delay_ms=90_000)
    await enqueue(backend, Q, "soon", delay_ms=30_000)
    await enqueue(backend, Q, "mid", delay_ms=60_000)
    listed = [r.id for r in await backend.list_jobs(Q, JobState.DELAYED, 0, 100)]
    assert listed == ["soon", "mid", "late"]


async def test_list_completed_newest_first(backend: Backend) -> None:
    ids = ["j1", "j2", "j3"]
    await enqueue(backend, Q, *ids)
    await _complete_each(backend, ids, KEEP)
    records = await backend.list_jobs(Q, JobState.COMPLETED, 0, 100)
    assert [r.id for r in records] == ["j3", "j2", "j1"]
    assert all(r.state is JobState.COMPLETED and r.result == b"1" for r in records)


async def test_list_pagination(backend: Backend) -> None:
    ids = [f"j{i}" for i in range(7)]
    await enqueue(backend, Q, *ids)
    await _complete_each(backend, ids[:5], KEEP)
    newest_first = ids[4::-1]
    pages = [
        [r.id for r in await backend.list_jobs(Q, JobState.COMPLETED, off, 2)]
        for off in (0, 2, 4, 6)
    ]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5], []]
    # the two left waiting paginate in claim order too
    assert [r.id for r in await backend.list_jobs(Q, JobState.WAITING, 1, 1)] == ["j6"]


async def test_list_empty_state(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    assert await backend.list_jobs(Q, JobState.FAILED, 0, 10) == []
    assert await backend.list_jobs("nothing-here", JobState.WAITING, 0, 10) == []


async def test_list_zero_limit_is_empty(backend: Backend) -> None:
    await enqueue(backend, Q, "d1", "d2", delay_ms=60_000)
    assert await backend.list_jobs(Q, JobState.DELAYED, 0, 0) == []
    assert await backend.list_jobs(Q, JobState.DELAYED, 1, 0) == []
    assert [r.id for r in await backend.list_jobs(Q, JobState.DELAYED, 0, 1)] == ["d1"]


# -- 16. update --------------------------------------------------------------------------


async def test_update_progress(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    assert await backend.update(Q, "j1", job.token, progress=b'{"pct":10}') is True
    assert await backend.update(Q, "j1", job.token, progress=b'{"pct":60}') is True
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.progress == b'{"pct":60}'
    assert record.logs == []


async def test_update_logs_append_in_order(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    assert await backend.update(Q, "j1", job.token, logs=["one", "two"]) is True
    assert await backend.update(Q, "j1", job.token, progress=b"1", logs=["three"]) is True
    assert await backend.update(Q, "j1", job.token, progress=None, logs=["four"]) is True
    record = await backend.get(Q, "j1")
    assert record is not None
    assert record.logs == [b"one", b"two", b"three", b"four"]
    assert record.progress == b"1"  # progress=None leaves it alone


async def test_update_with_stale_token_is_rejected(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    assert await backend.update(Q, "j1", "stale", progress=b"99", logs=["x"]) is False
    record = await backend.get(Q, "j1")
    assert record is not None
    assert (record.progress, record.logs) == (None, [])
    await backend.complete(Q, [Completion("j1", job.token, b"1")], KEEP)
    assert await backend.update(Q, "j1", job.token, progress=b"99") is False


# -- 17. wait_finished -------------------------------------------------------------------


async def test_wait_finished_times_out_for_waiting_job(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    started = time.monotonic()
    assert await backend.wait_finished(Q, "j1", 0.2) is None
    assert 0.15 <= time.monotonic() - started < 2.0


async def test_wait_finished_wakes_on_completion(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    waiter = asyncio.create_task(backend.wait_finished(Q, "j1", 5.0))
    try:
        await asyncio.sleep(0.1)
        assert not waiter.done()
        started = time.monotonic()
        await backend.complete(Q, [Completion("j1", job.token, b"1")], KEEP)
        assert await asyncio.wait_for(waiter, 2.0) is JobState.COMPLETED
        assert time.monotonic() - started < 1.0
    finally:
        await _stop(waiter)


async def test_wait_finished_wakes_on_dead_letter(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    waiter = asyncio.create_task(backend.wait_finished(Q, "j1", 5.0))
    try:
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await backend.fail(Q, "j1", job.token, ERR1, None, KEEP)
        assert await asyncio.wait_for(waiter, 2.0) is JobState.FAILED
        assert time.monotonic() - started < 1.0
    finally:
        await _stop(waiter)


async def test_wait_finished_ignores_retries(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    waiter = asyncio.create_task(backend.wait_finished(Q, "j1", 5.0))
    try:
        await asyncio.sleep(0.1)
        await backend.fail(Q, "j1", job.token, ERR1, 0, KEEP)  # not terminal
        await asyncio.sleep(0.1)
        assert not waiter.done()
        again = await claim_one(backend, Q)
        await backend.complete(Q, [Completion("j1", again.token, b"1")], KEEP)
        assert await asyncio.wait_for(waiter, 2.0) is JobState.COMPLETED
    finally:
        await _stop(waiter)


async def test_wait_finished_already_finished(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    await backend.complete(Q, [Completion("j1", job.token, b"1")], KEEP)
    started = time.monotonic()
    assert await backend.wait_finished(Q, "j1", 5.0) is JobState.COMPLETED
    assert time.monotonic() - started < 1.0


async def test_wait_finished_missing_job(backend: Backend) -> None:
    with pytest.raises(JobNotFound):
        await backend.wait_finished(Q, "missing", 1.0)


async def test_wait_finished_job_removed_while_waiting(backend: Backend) -> None:
    await enqueue(backend, Q, "j1")
    waiter = asyncio.create_task(backend.wait_finished(Q, "j1", 5.0))
    try:
        await asyncio.sleep(0.1)
        assert await backend.remove(Q, "j1") is True
        with pytest.raises(JobNotFound):
            await asyncio.wait_for(waiter, 2.0)
    finally:
        await _stop(waiter)


async def test_wait_finished_after_dead_letter_then_retry(backend: Backend) -> None:
    # The job briefly reaches ``failed`` and is retried straight away: the waiter may
    # report that ``failed``, or keep waiting and report the later ``completed``; it
    # must not sleep through the completion and time out.
    await enqueue(backend, Q, "j1")
    job = await claim_one(backend, Q)
    waiter = asyncio.create_task(backend.wait_finished(Q, "j1", 1.0))
    try:
        await asyncio.sleep(0.05)
        assert await backend.fail(Q, "j1", job.token, ERR1, None, KEEP) is True
        assert await backend.retry(Q, ["j1"]) == [True]
        await asyncio.sleep(0.05)
        again = await claim_one(backend, Q)
        await backend.complete(Q, [Completion("j1", again.token, b"1")], KEEP)
        result = await asyncio.wait_for(waiter, 3.0)
        assert result in (JobState.FAILED, JobState.COMPLETED), (
            f"wait_finished returned {result!r}: it missed the completion"
        )
    finally:
        await _stop(waiter)


# -- 18. workers -------------------------------------------------------------------------


def _worker(worker_id: str, started_at: int) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id,
        host="host-a",
        pid=4242,
        queues=["q", "emails"],
        concurrency=8,
        started_at=started_at,
        last_seen=started_at,
        active=3,
        processed=120,
        failed=4,
        extra={"version": "1.2"},
    )


async def test_register_and_unregister_worker(backend: Backend) -> None:
    now = await backend.time_ms()
    await backend.register_worker(_worker("w1", now), 60_000)
    await backend.register_worker(_worker("w2", now), 60_000)
    workers = {w.id: w for w in await backend.workers()}
    assert set(workers) == {"w1", "w2"}
    w1 = workers["w1"]
    assert (w1.host, w1.pid, w1.queues, w1.concurrency) == ("host-a", 4242, ["q", "emails"], 8)
    assert w1.started_at == now
    assert (w1.active, w1.processed, w1.failed) == (3, 120, 4)
    assert w1.extra == {"version": "1.2"}
    assert now - 5_000 <= w1.last_seen <= await backend.time_ms() + 5_000

    await backend.unregister_worker("w1")
    assert [w.id for w in await backend.workers()] == ["w2"]


async def test_register_worker_refresh_replaces_fields(backend: Backend) -> None:
    now = await backend.time_ms()
    await backend.register_worker(_worker("w1", now), 60_000)
    refreshed = WorkerInfo(
        id="w1", host="host-a", pid=4242, queues=["q"], concurrency=8,
        started_at=now, last_seen=now, active=0, processed=121, failed=4,
    )  # fmt: skip
    await backend.register_worker(refreshed, 60_000)
    workers = await backend.workers()
    assert len(workers) == 1
    assert (workers[0].processed, workers[0].active, workers[0].queues) == (121, 0, ["q"])


async def test_worker_expires_without_refresh(backend: Backend) -> None:
    now = await backend.time_ms()
    await backend.register_worker(_worker("w1", now), 200)
    assert [w.id for w in await backend.workers()] == ["w1"]
    await asyncio.sleep(0.3)
    assert await backend.workers() == []


# -- 19/20. queues, clock ----------------------------------------------------------------


async def test_queues_lists_used_names_sorted(backend: Backend) -> None:
    assert await backend.queues() == []
    await enqueue(backend, "mail", "j1")
    await enqueue(backend, "billing", "j1")
    await enqueue(backend, "zeta", "j1")
    await enqueue(backend, "mail", "j2")
    assert await backend.queues() == ["billing", "mail", "zeta"]


async def test_queues_are_independent(backend: Backend) -> None:
    await enqueue(backend, "a", "j1")
    await enqueue(backend, "b", "j1", data=b"[[2],{}]")
    record_a, record_b = await backend.get("a", "j1"), await backend.get("b", "j1")
    assert record_a is not None and record_b is not None
    assert (record_a.data, record_b.data) == (b"[[],{}]", b"[[2],{}]")
    assert (await claim_one(backend, "a")).queue == "a"
    assert await state(backend, "j1", queue="b") is JobState.WAITING


async def test_time_ms_is_wall_clock(backend: Backend) -> None:
    assert abs(await backend.time_ms() - time.time() * 1000) < 5_000
