"""corral.testing.assert_enqueued / assert_not_enqueued: what the store holds."""

from __future__ import annotations

from typing import Any
from unittest.mock import ANY

import pytest

from corral import Corral, JobState, ValidationError
from corral.testing import assert_enqueued, assert_not_enqueued, enqueued_jobs, run_until_idle


def register(app: Corral) -> tuple[Any, Any]:
    @app.task(name="mail.send", queue="emails")
    async def send(to: str, subject: str = "Hi", cc: list[str] | None = None) -> None: ...

    @app.task(name="report.build", queue="reports")
    async def build(day: str) -> None: ...

    return send, build


async def test_equivalent_calls_match_and_the_jobs_are_returned(app: Corral) -> None:
    send, _ = register(app)
    job = await send.enqueue("a@b.c", subject="Hi")
    # Positional or keyword, defaults filled in: the same call.
    (found,) = assert_enqueued(app, send, ["a@b.c"])
    assert found.id == job.id and found.queue == "emails"
    assert_enqueued(app, "mail.send", ["a@b.c", "Hi", None], queue="emails")
    assert_enqueued(app, send, kwargs={"to": "a@b.c", "subject": ANY})
    assert_enqueued(app, send)  # any arguments
    assert_enqueued(app, send, count=1)


async def test_wrong_arguments_fail_listing_what_was_enqueued_instead(app: Corral) -> None:
    send, build = register(app)
    await send.enqueue("a@b.c", "Welcome")
    await build.options(delay=600).enqueue("2026-01-01")
    with pytest.raises(AssertionError) as caught:
        assert_enqueued(app, send, ["x@y.z", "Welcome"])
    message = str(caught.value)
    assert "expected a job mail.send(args=['x@y.z', 'Welcome'], kwargs={}) in any queue" in message
    assert "found none" in message
    lines = message.splitlines()
    # The task's own near miss first, then the rest, each with its queue and state.
    near = next(i for i, line in enumerate(lines) if "mail.send(args=['a@b.c', 'Welcome']" in line)
    other = next(i for i, line in enumerate(lines) if "report.build(args=['2026-01-01']" in line)
    assert near < other
    assert "queue='emails' waiting" in lines[near] and "queue='reports' delayed" in lines[other]


async def test_the_queue_and_count_narrow_the_match(app: Corral) -> None:
    send, _ = register(app)
    await send.enqueue("a@b.c")
    await send.options(queue="bulk").enqueue("a@b.c")
    assert len(assert_enqueued(app, send, ["a@b.c"], count=2)) == 2
    assert_enqueued(app, send, ["a@b.c"], queue="bulk", count=1)
    with pytest.raises(AssertionError, match="expected 3 job"):
        assert_enqueued(app, send, ["a@b.c"], count=3)
    with pytest.raises(AssertionError, match=r"in queue 'other'.*found none"):
        assert_enqueued(app, send, queue="other")


async def test_jobs_that_already_ran_are_not_enqueued_unless_asked(app: Corral) -> None:
    send, _ = register(app)
    await send.enqueue("a@b.c")
    await run_until_idle(app)
    with pytest.raises(AssertionError, match="nothing else was enqueued"):
        assert_enqueued(app, send)
    assert_enqueued(app, send, ["a@b.c"], states=[JobState.COMPLETED])


async def test_assert_not_enqueued_fails_naming_the_job_found(app: Corral) -> None:
    send, build = register(app)
    job = await send.enqueue("a@b.c")
    assert_not_enqueued(app, build)
    assert_not_enqueued(app, send, ["someone@else"])
    with pytest.raises(AssertionError) as caught:
        assert_not_enqueued(app, send)
    assert "expected no job of task 'mail.send'" in str(caught.value)
    assert f"id={job.id}" in str(caught.value)


async def test_a_name_unknown_here_is_matched_literally(app: Corral, store_url: str) -> None:
    producer = Corral(store_url)  # knows no task: arguments compare as given
    try:
        await producer.enqueue("billing.charge", ["cus_1"], {"amount": 5}, queue="billing")
    finally:
        await producer.close()
    assert_enqueued(app, "billing.charge", ["cus_1"], {"amount": 5})
    with pytest.raises(AssertionError):
        assert_enqueued(app, "billing.charge", ["cus_1"])
    assert [j.name for j in enqueued_jobs(app, "billing")] == ["billing.charge"]


async def test_bad_use_is_a_validation_error(app: Corral) -> None:
    send, _ = register(app)
    with pytest.raises(ValidationError, match=r"do not fit task 'mail\.send'"):
        assert_enqueued(app, send, ["a", "b", [], "extra"])
    with pytest.raises(ValidationError, match="args must be a list"):
        assert_enqueued(app, send, "a@b.c")
    with pytest.raises(ValidationError, match="task must be a Task or a task name"):
        assert_enqueued(app, 42)


def test_from_sync_code_too(sync_app: Corral) -> None:
    send, _ = register(sync_app)
    send.enqueue_sync("a@b.c")
    assert_enqueued(sync_app, send, ["a@b.c"])
    with pytest.raises(AssertionError, match=r"mail\.send"):
        assert_not_enqueued(sync_app, "mail.send")
