"""What a live worker tells about itself and the jobs it runs: WorkerInfo.jobs and
.version in its registration, the worker id on the job and on each attempt's error,
and the job's blockers while it runs and once no worker is left."""

from __future__ import annotations

import asyncio

import corral
from corral import Corral, JobState
from tests.worker.conftest import Workers, wait_until


async def test_a_live_workers_registration_lists_the_job_it_runs(
    app: Corral, workers: Workers
) -> None:
    release = asyncio.Event()

    @app.task(name="info.hold", queue="info")
    async def hold() -> str:
        await release.wait()
        return "done"

    worker = workers.start(["info"], heartbeat=0.05)
    job = await hold.enqueue()

    async def listed() -> bool:
        return [(w.id, w.jobs) for w in await app.workers()] == [(worker.id, [("info", job.id)])]

    await wait_until(listed)
    (info,) = await app.workers()
    assert info.version == corral.__version__
    await job.refresh()
    assert (job.state, job.worker) == (JobState.ACTIVE, worker.id)
    assert await job.blockers() == []
    release.set()
    assert await job.result(timeout=5) == "done"

    async def emptied() -> bool:
        return [w.jobs for w in await app.workers()] == [[]]

    await wait_until(emptied)


async def test_each_failed_attempt_names_its_worker(app: Corral, workers: Workers) -> None:
    @app.task(name="info.boom", queue="info", attempts=2, backoff=0)
    async def boom() -> None:
        raise ValueError("boom")

    worker = workers.start(["info"])
    job = await boom.enqueue()
    assert await job.wait(timeout=5) is JobState.FAILED
    assert [(e["attempt"], e["worker"]) for e in job.errors] == [(1, worker.id), (2, worker.id)]
    assert job.to_dict()["worker"] == worker.id
    await workers.stop(worker)
    # The worker unregistered: a job left waiting now has no one to run it.
    again = await boom.enqueue()
    assert [b.kind for b in await again.blockers()] == ["no_worker"]
