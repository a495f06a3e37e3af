"""Listing every queue at once (``overview``), and forgetting queues left with nothing.

A queue with no job in any state, no schedule, no limits, not paused and served by no
live worker drops out of the listing; its next job brings it back.
"""

from __future__ import annotations

from corral.backends.base import Backend, Completion, QueueLimits, Retention, WorkerInfo
from tests.contract.conftest import claim_one, enqueue

KEEP = Retention()


async def _listed(backend: Backend) -> dict[str, dict[str, int]]:
    return {o.name: o.counts for o in await backend.overview()}


async def _empty(backend: Backend, queue: str) -> None:
    """A queue that held a job, now with none in any state."""
    await enqueue(backend, queue, f"{queue}-job")
    job = await claim_one(backend, queue)
    assert await backend.complete(queue, [Completion(job.id, job.token, b"1")], Retention(count=0))


async def test_overview_has_each_queues_counts_and_totals(backend: Backend) -> None:
    await enqueue(backend, "a", "a1", "a2")
    await enqueue(backend, "a", "a3", delay_ms=60_000)
    await enqueue(backend, "b", "b1", group="tenant")
    job = await claim_one(backend, "b")
    await backend.complete("b", [Completion(job.id, job.token, b"1")], KEEP)
    await backend.set_paused("b", True)
    overview = await backend.overview()
    assert [o.name for o in overview] == ["a", "b"]
    for o in overview:
        assert o.counts == await backend.counts(o.name), o.name
        assert o.stats == await backend.stats(o.name), o.name
    assert overview[1].stats.completed == 1 and overview[1].counts["paused"] == 1


async def test_an_emptied_queue_is_forgotten_and_comes_back_with_its_next_job(
    backend: Backend,
) -> None:
    await enqueue(backend, "busy", "x")
    await _empty(backend, "gone")
    assert await backend.queues() == ["busy", "gone"]
    assert list(await _listed(backend)) == ["busy"]
    assert await backend.queues() == ["busy"]
    assert list(await _listed(backend)) == ["busy"]
    # The same backend (which enqueued to it before) brings it back.
    await enqueue(backend, "gone", "again")
    listed = await _listed(backend)
    assert list(listed) == ["busy", "gone"]
    assert listed["gone"]["waiting"] == 1
    assert await backend.queues() == ["busy", "gone"]


async def test_queues_with_schedules_limits_a_pause_or_a_worker_are_kept(
    backend: Backend,
) -> None:
    for queue in ("scheduled", "limited", "paused", "served", "plain"):
        await _empty(backend, queue)
    await backend.upsert_schedule("scheduled", "nightly", b"{}", None, keep=False)
    await backend.set_limits("limited", QueueLimits(max_active=2))
    await backend.set_paused("paused", True)
    now = await backend.time_ms()
    worker = WorkerInfo("w1", "host", 1, ["served"], 1, now, now)
    await backend.register_worker(worker, 60_000)
    assert list(await _listed(backend)) == ["limited", "paused", "scheduled", "served"]

    # Once nothing holds them, they go too; totals of a kept queue stay.
    await backend.remove_schedule("scheduled", "nightly")
    await backend.set_limits("limited", QueueLimits())
    await backend.set_paused("paused", False)
    assert (await backend.stats("served")).completed == 1
    await backend.unregister_worker("w1")
    assert list(await _listed(backend)) == []
    assert await backend.queues() == []
