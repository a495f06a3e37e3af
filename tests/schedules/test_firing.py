"""Schedules firing through real workers, on both backends."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral import Corral, JobState
from corral.backends.base import Backend, NewJob
from corral.schedules import ScheduleSpec
from corral.worker import Worker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(store_url: str) -> str:
    return store_url


def make_app(url: str) -> Corral:
    app = Corral(url)

    @app.task(name="s.tick", queue="sched", every=0.3)
    async def tick() -> str:
        return "tick"

    @app.task(name="s.report", queue="sched")
    async def report(customer: str, fmt: str = "pdf") -> str:
        return f"{customer}.{fmt}"

    return app


@pytest.fixture
async def app(url: str) -> AsyncIterator[Corral]:
    app = make_app(url)
    yield app
    await app.close()


async def _jobs(app: Corral) -> list[str]:
    jobs = []
    for state in JobState:
        jobs += [j.id for j in await app.queue("sched").jobs(state, limit=1000)]
    return jobs


def count_fires(backend: Backend, fires: Counter[tuple[str, int]]) -> None:
    """Count, per (schedule, tick), the fires the store reported as won. A job id is
    derived from its tick, so a tick fired twice still leaves one job: only the
    fires themselves show it."""
    original = backend.fire_schedule

    async def fire_schedule(
        queue: str, name: str, tick: int, next_at: int | None, job: NewJob | None
    ) -> bool:
        fired = await original(queue, name, tick, next_at, job)
        if fired:
            fires[(name, tick)] += 1
        return fired

    backend.fire_schedule = fire_schedule  # type: ignore[method-assign]


async def test_two_workers_fire_each_tick_exactly_once(app: Corral, url: str) -> None:
    # Two apps, two connections: as two worker processes would race for each tick.
    other = make_app(url)
    fires: Counter[tuple[str, int]] = Counter()
    count_fires(await app.backend(), fires)
    count_fires(await other.backend(), fires)
    workers = [Worker(a, ["sched"], block=0.2) for a in (app, other)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        async with asyncio.timeout(10):
            while len(fires) < 6:
                await asyncio.sleep(0.05)
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)
        await other.close()
    doubled = {key: n for key, n in fires.items() if n != 1}
    assert doubled == {}, f"ticks fired more than once: {doubled}"
    ticks = sorted(tick for name, tick in fires if name == "s.tick")
    assert {b - a for a, b in itertools.pairwise(ticks)} == {300}  # none lost
    jobs = sorted(int(i.split("@")[1]) for i in await _jobs(app) if i.startswith("s.tick@"))
    assert jobs == ticks  # every fire stored its job


async def test_runtime_schedule_with_args_pause_resume_remove(app: Corral) -> None:
    made = await app.schedules.add(
        "nightly-acme", "s.report", every=0.2, args=["acme"], kwargs={"fmt": "csv"}
    )
    assert made.next_run_at is not None
    listed = {s.name: s for s in await app.schedules.list()}
    assert listed["nightly-acme"].spec.args == ["acme"]

    worker = Worker(app, ["sched"], block=0.2)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.8)
        fired = [i for i in await _jobs(app) if i.startswith("nightly-acme@")]
        assert fired
        job = await app.get_job(fired[0], "sched")
        assert await job.result(timeout=5) == "acme.csv"

        await app.schedules.pause("nightly-acme")
        assert (await app.schedules.get("nightly-acme")).next_run_at is None
        await asyncio.sleep(0.2)
        before = len([i for i in await _jobs(app) if i.startswith("nightly-acme@")])
        await asyncio.sleep(0.6)
        after = len([i for i in await _jobs(app) if i.startswith("nightly-acme@")])
        assert after == before

        await app.schedules.resume("nightly-acme")
        await asyncio.sleep(0.6)
        resumed = len([i for i in await _jobs(app) if i.startswith("nightly-acme@")])
        assert resumed > after

        assert await app.schedules.remove("nightly-acme") is True
        assert "nightly-acme" not in {s.name for s in await app.schedules.list()}
        assert await app.schedules.remove("nightly-acme") is False
    finally:
        worker.stop()
        await running


async def test_runtime_schedule_arguments_are_checked(app: Corral) -> None:
    from corral import InvalidArguments

    with pytest.raises(InvalidArguments):
        await app.schedules.add("bad", "s.report", every=1, args=[1, 2, 3])
    assert await app.schedules.list() == []


async def _stale(app: Corral, name: str, catch_up: bool) -> int:
    """Store a schedule whose pending tick is 10 minutes old (no worker ran)."""
    backend = await app.backend()
    spec = ScheduleSpec(
        name=name, task="s.report", queue="sched", every=60, args=["late"], catch_up=catch_up
    )
    now = await backend.time_ms()
    tick = (now // 60_000 - 10) * 60_000
    await backend.upsert_schedule("sched", name, spec.to_json(), tick, keep=False)
    return tick


@pytest.mark.parametrize("catch_up", [False, True])
async def test_missed_ticks_are_skipped_or_caught_up_once(app: Corral, catch_up: bool) -> None:
    tick = await _stale(app, "old", catch_up)
    started = time.time()
    worker = Worker(app, ["sched"], block=0.2)
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(10):  # until the stale tick was handled
            while (await app.schedules.get("old")).next_run_at.timestamp() < time.time():  # type: ignore[union-attr]
                await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await running
    fired = [i for i in await _jobs(app) if i.startswith("old@")]
    schedule = await app.schedules.get("old")
    # Rescheduled past the start (not "> now": a minute boundary may pass meanwhile).
    assert schedule.next_run_at is not None and schedule.next_run_at.timestamp() > started
    if catch_up:
        assert len(fired) == 1
        assert int(fired[0].split("@")[1]) >= tick + 9 * 60_000  # the latest missed tick
    else:
        assert fired == []


async def test_pending_tick_survives_the_worker_that_would_fire_it(app: Corral) -> None:
    # The first worker stops before its tick; a second one, started later, fires it.
    await app.schedules.add("later", "s.report", every=1.0, args=["x"])
    pending = (await app.schedules.get("later")).next_run_at
    assert pending is not None
    await asyncio.sleep(max(0.0, pending.timestamp() - time.time()) + 0.3)  # the tick passes
    worker = Worker(app, ["sched"], block=0.2)
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0.5)
    worker.stop()
    await running
    tick_ms = int(pending.timestamp() * 1000)
    assert f"later@{tick_ms}" in await _jobs(app)


# CLI processes: on Redis in CI only, as most CLI tests (tests/cli/conftest.py).
@pytest.mark.inner_loop_backends("sqlite")
def test_cli_lists_schedules(url: str) -> None:
    app = make_app(url)
    app.schedules.add_sync("cli-one", "s.report", cron="0 9 * * 1", tz="Europe/Berlin", args=["a"])
    app.close_sync()
    out = subprocess.run(
        [sys.executable, "-m", "corral", "--url", url, "schedules", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert '"name": "cli-one"' in out.stdout
    assert '"cron": "0 9 * * 1"' in out.stdout
    human = subprocess.run(
        [sys.executable, "-m", "corral", "--url", url, "schedules"],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "cli-one" in human.stdout and "Europe/Berlin" in human.stdout
