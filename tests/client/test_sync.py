"""The blocking ``*_sync`` twins, called from plain (non-async) code."""

from __future__ import annotations

import pytest

from corral import Corral, CorralError, JobNotFound, JobState, ResultTimeout


def _register(app: Corral) -> object:
    @app.task(name="reports.build", queue="reports")
    def build(report_id: int, fmt: str = "pdf") -> str:
        return f"{report_id}.{fmt}"

    return build


def test_enqueue_sync_and_refresh_sync(sync_app: Corral) -> None:
    build = _register(sync_app)
    job = build.enqueue_sync(7, fmt="csv")  # type: ignore[attr-defined]
    assert job.state is JobState.WAITING
    again = job.refresh_sync()
    assert again is job
    assert (job.name, job.args, job.kwargs) == ("reports.build", [7], {"fmt": "csv"})
    assert job.attempts == 0


def test_counts_sync(sync_app: Corral) -> None:
    build = _register(sync_app)
    for n in range(3):
        build.enqueue_sync(n)  # type: ignore[attr-defined]
    counts = sync_app.queue("reports").counts_sync()
    assert counts["waiting"] == 3
    assert counts["active"] == counts["completed"] == counts["paused"] == 0


def test_app_enqueue_sync_by_name(sync_app: Corral) -> None:
    job = sync_app.enqueue_sync("other.task", [1, 2], {"x": 3}, queue="elsewhere")
    assert job.queue == "elsewhere"
    found = sync_app.get_job_sync(job.id)
    assert found.queue == "elsewhere"
    assert (found.args, found.kwargs) == ([1, 2], {"x": 3})
    assert sync_app.queues_sync() == ["elsewhere"]


def test_enqueue_many_sync(sync_app: Corral) -> None:
    build = _register(sync_app)
    jobs = build.enqueue_many_sync([(1,), build.call(2, fmt="txt")])  # type: ignore[attr-defined]
    assert [job.args for job in jobs] == [[1], [2]]
    assert [job.refresh_sync().kwargs for job in jobs] == [{}, {"fmt": "txt"}]


def test_job_actions_sync(sync_app: Corral) -> None:
    build = _register(sync_app)
    job = build.options(delay=60).enqueue_sync(1)  # type: ignore[attr-defined]
    assert job.promote_sync() is True
    assert job.cancel_sync() is JobState.CANCELLED
    assert job.retry_sync() is True
    assert job.refresh_sync().state is JobState.WAITING
    assert job.remove_sync() is True
    with pytest.raises(JobNotFound):
        job.refresh_sync()


def test_queue_actions_sync(sync_app: Corral) -> None:
    build = _register(sync_app)
    queue = sync_app.queue("reports")
    for n in range(4):
        build.enqueue_sync(n)  # type: ignore[attr-defined]
    queue.pause_sync()
    assert queue.counts_sync()["paused"] == 1
    queue.resume_sync()
    assert queue.counts_sync()["paused"] == 0
    assert [job.args[0] for job in queue.jobs_sync(limit=2)] == [0, 1]
    assert queue.cancel_all_sync() == 4
    assert queue.retry_all_sync("cancelled") == 4
    assert queue.drain_sync() == 4
    assert queue.counts_sync()["waiting"] == 0


def test_result_sync_times_out_without_a_worker(sync_app: Corral) -> None:
    build = _register(sync_app)
    job = build.enqueue_sync(1)  # type: ignore[attr-defined]
    with pytest.raises(ResultTimeout):
        job.result_sync(timeout=0.1)


async def test_sync_calls_inside_async_code_raise(app: Corral) -> None:
    build = _register(app)
    with pytest.raises(CorralError, match="await the async method instead"):
        build.enqueue_sync(1)  # type: ignore[attr-defined]
    with pytest.raises(CorralError, match="from async code"):
        app.queue("reports").counts_sync()
    with pytest.raises(CorralError, match="from async code"):
        app.enqueue_sync("reports.build", [1])
    job = await build.enqueue(1)  # type: ignore[attr-defined]
    with pytest.raises(CorralError, match="from async code"):
        job.refresh_sync()
    with pytest.raises(CorralError, match="from async code"):
        job.cancel_sync()
    # only the async enqueue went through
    assert (await app.queue("reports").counts())["waiting"] == 1
    assert (await job.refresh()).state is JobState.WAITING
