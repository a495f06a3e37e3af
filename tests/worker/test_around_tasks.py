"""``Corral.around_tasks``: context managers entered around each task call, where it
runs (the thread of a sync task, the job's own asyncio task for an async one)."""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

import pytest

from corral import Corral, JobContext
from corral.errors import ConfigurationError, JobFailed
from tests.worker.conftest import Workers

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="outside")


async def test_entered_where_the_task_runs_in_order(app: Corral, workers: Workers) -> None:
    entered: list[tuple[str, str, str]] = []

    @app.around_tasks
    @contextlib.contextmanager
    def first(ctx: JobContext) -> Iterator[None]:
        entered.append(("first", ctx.id, threading.current_thread().name))
        token = where.set(f"job {ctx.id}")
        try:
            yield
        finally:
            where.reset(token)
            entered.append(("first out", ctx.id, threading.current_thread().name))

    @app.around_tasks
    @contextlib.contextmanager
    def second(ctx: JobContext) -> Iterator[None]:
        entered.append(("second", ctx.id, threading.current_thread().name))
        yield

    @app.task(name="around.sync")
    def plain() -> list[str]:
        return [where.get(), threading.current_thread().name]

    @app.task(name="around.async")
    async def coro() -> str:
        return where.get()

    workers.start()
    job = await plain.enqueue()
    value, thread = await job.result(timeout=10)
    assert value == f"job {job.id}" and thread.startswith("corral-job")
    assert [e[0] for e in entered] == ["first", "second", "first out"]
    assert all(e[2] == thread for e in entered)  # entered and left in the task's thread
    other = await coro.enqueue()
    assert await other.result(timeout=10) == f"job {other.id}"
    assert where.get() == "outside"


async def test_an_error_entering_fails_the_attempt(app: Corral, workers: Workers) -> None:
    @app.around_tasks
    def refuse(ctx: JobContext) -> contextlib.AbstractContextManager[None]:
        raise RuntimeError("no database today")

    @app.task(name="around.never", attempts=1)
    async def never() -> None:
        raise AssertionError("the task ran")

    workers.start()
    job = await never.enqueue()
    with pytest.raises(JobFailed, match="no database today"):
        await job.result(timeout=10)


def test_only_a_function_is_taken(app: Corral) -> None:
    with pytest.raises(ConfigurationError, match="around_tasks"):
        app.around_tasks("not a function")  # type: ignore[arg-type]
