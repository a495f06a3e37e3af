"""``Schedules.run_now``: the schedule's job now, its ticks untouched (both backends)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from corral import Corral, JobState
from corral.errors import JobNotFound
from corral.schedules import tick_job
from corral.worker import Worker
from tests.schedules.test_firing import make_app


@pytest.fixture
async def app(store_url: str) -> AsyncIterator[Corral]:
    app = make_app(store_url)
    yield app
    await app.close()


async def test_run_now_enqueues_the_job_and_keeps_the_next_tick(app: Corral) -> None:
    await app.schedules.add("acme", "s.report", cron="0 9 * * *", args=["acme"], kwargs={"fmt": "csv"})  # fmt: skip
    before = await app.schedules.get("acme")

    first = await app.schedules.run_now("acme")
    second = await app.schedules.run_now("acme")

    assert first.id.startswith("acme@now-") and second.id.startswith("acme@now-")
    assert first.id != second.id  # each call is a job of its own
    assert (first.queue, first.state, first.args, first.kwargs) == (
        "sched", JobState.WAITING, ["acme"], {"fmt": "csv"}
    )  # fmt: skip
    assert await app.schedules.get("acme") == before  # next and last tick as they were
    worker = Worker(app, ["sched"], block=0.2)
    running = asyncio.create_task(worker.run())
    try:
        assert await first.result(timeout=5) == "acme.csv"
    finally:
        worker.stop()
        await running


async def test_run_now_works_while_paused_and_it_stays_paused(app: Corral) -> None:
    await app.schedules.add("acme", "s.report", every=60, args=["acme"])
    await app.schedules.pause("acme")
    job = await app.schedules.run_now("acme")
    assert (await app.get_job(job.id, "sched")).state is JobState.WAITING
    after = await app.schedules.get("acme")
    assert after.spec.paused and after.next_run_at is None


async def test_pause_and_resume_keep_the_last_run(app: Corral) -> None:
    made = await app.schedules.add("acme", "s.report", every=60, args=["acme"])
    assert made.next_run_at is not None
    backend = await app.backend()
    [record] = await backend.schedules("sched")
    assert record.next_at is not None
    # The tick fired as a scheduler fires it: the last run is that tick.
    job = tick_job(app, made.spec, record.next_at)
    assert await backend.fire_schedule(
        "sched", "acme", record.next_at, record.next_at + 60_000, job
    )
    fired = await app.schedules.get("acme")
    assert fired.last_run_at == made.next_run_at

    paused = await app.schedules.pause("acme")
    assert (paused.spec.paused, paused.next_run_at, paused.last_run_at) == (
        True,
        None,
        made.next_run_at,
    )
    assert paused == await app.schedules.get("acme")
    resumed = await app.schedules.resume("acme")
    assert (resumed.spec.paused, resumed.last_run_at) == (False, made.next_run_at)
    assert resumed.next_run_at is not None
    assert resumed == await app.schedules.get("acme")


async def test_run_now_of_an_unknown_schedule(app: Corral) -> None:
    with pytest.raises(JobNotFound, match="no schedule named 'nope'"):
        await app.schedules.run_now("nope")
