"""Task resolvers: a worker asks them for a task name no module registered (how
corral.contrib.django runs a Django task whose module it has not imported yet)."""

from __future__ import annotations

from typing import Any

from corral import Corral, JobFailed, JobState
from tests.worker.conftest import Workers


async def test_a_resolver_registers_a_task_on_its_first_job(
    app: Corral, producer: Corral, workers: Workers
) -> None:
    asked: list[str] = []

    def resolve(name: str) -> Any:
        asked.append(name)
        if name != "late.double":
            return None

        @app.task(name="late.double")
        def double(n: int) -> int:
            return 2 * n

        return double

    app.task_resolvers.append(resolve)
    workers.start()
    first = await producer.enqueue("late.double", [21])
    assert await first.result(timeout=5) == 42
    second = await producer.enqueue("late.double", [5])
    assert await second.result(timeout=5) == 10
    assert asked == ["late.double"]  # registered once, then found like any task

    unknown = await producer.enqueue("nobody.knows")
    assert await unknown.wait(5) is JobState.FAILED
    assert unknown.error is not None and "no task named 'nobody.knows'" in unknown.error["message"]


async def test_a_resolver_that_raises_fails_the_job_not_the_worker(
    app: Corral, producer: Corral, workers: Workers
) -> None:
    def broken(name: str) -> Any:
        raise RuntimeError("resolver bug")

    @app.task(name="fine")
    def fine() -> str:
        return "ok"

    app.task_resolvers.append(broken)
    workers.start()
    bad = await producer.enqueue("missing.task")
    try:
        await bad.result(timeout=5)
    except JobFailed as exc:
        assert "no task named 'missing.task'" in str(exc)
    else:
        raise AssertionError("the job of an unresolvable task did not fail")
    assert await (await producer.enqueue("fine")).result(timeout=5) == "ok"
