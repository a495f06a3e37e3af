"""corral.testing.inline: each enqueue runs its job, through the store, before it returns."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from corral import (
    Corral,
    JobContext,
    JobEvent,
    JobState,
    JobTimeout,
    SerializationError,
    UnknownTask,
)
from corral.testing import assert_enqueued, inline


async def test_the_job_has_run_and_its_outcome_is_stored_when_enqueue_returns(app: Corral) -> None:
    seen: list[Any] = []

    @app.task(queue="emails")
    async def send(ctx: JobContext, to: str, options: dict[str, Any]) -> dict[str, Any]:
        options["touched"] = True  # a worker's task gets its own copy, decoded from JSON
        seen.append((ctx.id, ctx.attempt, to))
        await ctx.progress({"sent": 1})
        return {"to": to}

    caller_options = {"cc": ["b@c.d"]}
    with inline(app):
        job = await send.enqueue("a@b.c", caller_options)
    assert job.state is JobState.COMPLETED
    assert job.return_value == {"to": "a@b.c"}
    assert seen == [(job.id, 1, "a@b.c")]
    assert caller_options == {"cc": ["b@c.d"]}  # the JSON round trip, not the caller's object
    stored = await app.get_job(job.id)
    assert (stored.state, stored.progress, stored.attempts) == (JobState.COMPLETED, {"sent": 1}, 1)
    assert await stored.result(timeout=1) == {"to": "a@b.c"}


async def test_retries_run_at_once_and_a_job_failed_for_good_raises_its_own_exception(
    app: Corral,
) -> None:
    runs: list[int] = []

    @app.task(attempts=3, backoff=3600)  # an hour's backoff: skipped inline
    async def flaky(ctx: JobContext, fail_times: int) -> str:
        runs.append(ctx.attempt)
        if ctx.attempt <= fail_times:
            raise ValueError(f"boom on attempt {ctx.attempt}")
        return "ok"

    started = time.monotonic()
    with inline(app):
        job = await flaky.enqueue(2)
        assert (job.state, job.return_value, runs) == (JobState.COMPLETED, "ok", [1, 2, 3])
        assert [e["message"] for e in job.errors] == ["boom on attempt 1", "boom on attempt 2"]
        with pytest.raises(ValueError, match="boom on attempt 3") as caught:
            await flaky.enqueue(5)
    assert time.monotonic() - started < 5
    # The traceback is the task's own: its frame is in it.
    assert any(frame.name == "flaky" for frame in caught.traceback)
    (failed,) = await app.queue("default").jobs("failed")
    assert (failed.attempts, failed.error["type"]) == (3, "ValueError")


async def test_raise_errors_false_returns_the_failed_job(app: Corral) -> None:
    @app.task(attempts=1)
    async def broken() -> None:
        raise KeyError("missing")

    with inline(app, raise_errors=False):
        job = await broken.enqueue()
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error["type"] == "KeyError"


async def test_the_tasks_timeout_applies(app: Corral) -> None:
    @app.task(attempts=1, timeout=0.2)
    async def slow() -> None:
        await asyncio.sleep(30)

    started = time.monotonic()
    with inline(app), pytest.raises(JobTimeout):
        await slow.enqueue()
    assert time.monotonic() - started < 5


async def test_a_result_json_would_change_fails_the_job_as_in_a_worker(app: Corral) -> None:
    @app.task(attempts=1)
    async def returns_tuple() -> Any:
        return (1, 2)

    with inline(app), pytest.raises(SerializationError, match="tuple"):
        await returns_tuple.enqueue()


async def test_delayed_jobs_stay_delayed_unless_run_delayed(app: Corral) -> None:
    ran: list[str] = []

    @app.task()
    async def remind(who: str) -> None:
        ran.append(who)

    with inline(app):
        later = await remind.options(delay=3600).enqueue("later")
    assert later.state is JobState.DELAYED and ran == []
    assert_enqueued(app, remind, ["later"])
    with inline(app, run_delayed=True):
        now = await remind.options(delay=3600).enqueue("now")
    assert now.state is JobState.COMPLETED and ran == ["now"]


async def test_a_job_enqueued_by_a_running_job_runs_inside_it(app: Corral) -> None:
    order: list[str] = []

    @app.task(queue="child")
    async def child(n: int) -> int:
        order.append(f"child {n}")
        return n * 10

    @app.task(queue="parent")
    async def parent() -> int:
        order.append("parent start")
        job = await child.enqueue(4)
        order.append("parent end")
        return int(job.return_value)

    with inline(app):
        job = await parent.enqueue()
    assert order == ["parent start", "child 4", "parent end"]
    assert job.return_value == 40


async def test_listeners_and_callbacks_have_run_when_enqueue_returns(app: Corral) -> None:
    heard: list[tuple[str, str]] = []

    @app.on_failed
    async def on_failed(event: JobEvent) -> None:
        heard.append(("failed", event.error_message))

    @app.task(attempts=2, on_retrying=lambda e: heard.append(("retrying", e.error_message)))
    def bad() -> None:
        raise RuntimeError("nope")

    with inline(app, raise_errors=False):
        await bad.enqueue()
    assert sorted(heard) == [("failed", "RuntimeError: nope"), ("retrying", "RuntimeError: nope")]


async def test_an_existing_job_id_runs_nothing_again(app: Corral) -> None:
    runs: list[int] = []

    @app.task()
    async def once() -> None:
        runs.append(1)

    with inline(app):
        first = await once.options(job_id="only").enqueue()
        second = await once.options(job_id="only").enqueue()
    assert (first.created, second.created, runs) == (True, False, [1])


async def test_outside_the_block_enqueue_only_stores(app: Corral) -> None:
    @app.task()
    async def noop() -> None: ...

    with inline(app):
        pass
    job = await noop.enqueue()
    assert job.state is JobState.WAITING


def test_sync_code_and_sync_tasks_run_inline_too(sync_app: Corral) -> None:
    threads: list[str] = []

    @sync_app.task(queue="imports")
    def import_rows(ctx: JobContext, rows: list[int]) -> int:
        threads.append(threading.current_thread().name)
        assert ctx.worker_state == {"db": "fake"}
        ctx.progress_sync({"done": len(rows)})
        return sum(rows)

    with inline(sync_app, worker_state={"db": "fake"}):
        job = import_rows.enqueue_sync([1, 2, 3])
    assert (job.state, job.return_value, job.progress) == (JobState.COMPLETED, 6, {"done": 3})
    assert threads and threads[0].startswith("corral-inline")


async def test_a_job_of_a_paused_queue_stays_waiting(
    app: Corral, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task(queue="held")
    async def noop() -> None: ...

    await app.queue("held").pause()
    with inline(app):
        job = await noop.enqueue()
    assert job.state is JobState.WAITING
    assert f"inline: job {job.id}" in caplog.text and "'held' is paused" in caplog.text


async def test_a_name_no_task_answers_to_fails_as_in_a_worker(app: Corral) -> None:
    with inline(app), pytest.raises(UnknownTask, match=r"no task named 'nobody\.knows'"):
        await app.enqueue("nobody.knows", ["x"])
    (failed,) = await app.queue("default").jobs("failed")
    assert failed.name == "nobody.knows"
