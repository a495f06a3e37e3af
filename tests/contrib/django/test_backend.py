"""CorralBackend through Django's own API, run by a real Corral worker, on both stores
(and, for ORM writes, both databases)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from corral import JobState
from corral.contrib.django import CorralBackend, CorralTask, corral_task, enqueue_on_commit
from corral.contrib.django._compat import (
    TASKS_MODULE,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_enqueued,
    task_finished,
    task_started,
)
from corral.errors import ConfigurationError, CorralError, InvalidArguments
from tests.contrib.django.conftest import WorkerThread, finished, wait_until
from tests.contrib.django.testapp import tasks
from tests.contrib.django.testapp.models import Note


def test_flags_and_task_class(backend: Any) -> None:
    assert isinstance(backend, CorralBackend)
    assert backend.supports_defer and backend.supports_async_task
    assert backend.supports_get_result and backend.supports_priority
    assert isinstance(tasks.write_note, CorralTask)  # @task on this backend makes one


def test_result_through_the_lifecycle(backend: Any, worker: Any) -> None:
    tasks.GATE.clear()
    result = tasks.wait_for_gate.enqueue("hello")
    assert result.status == TaskResultStatus.READY
    assert result.enqueued_at is not None and result.attempts == 0
    with pytest.raises(ValueError, match="not finished"):
        _ = result.return_value

    def running() -> Any:
        result.refresh()
        return result.status == TaskResultStatus.RUNNING

    wait_until(running, what="RUNNING")
    assert result.worker_ids == [worker.worker.id]
    assert result.started_at is not None and result.finished_at is None
    tasks.GATE.set()
    done = finished(backend, result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == "HELLO"
    assert done.finished_at >= done.started_at >= done.enqueued_at
    assert done.errors == [] and done.attempts == 1
    assert done.args == ["hello"] and done.task.func is tasks.wait_for_gate.func
    assert tasks.wait_for_gate.get_result(result.id).id == result.id


def test_orm_writes_from_a_task(backend: Any, worker: Any, db_alias: str) -> None:
    result = tasks.write_note.enqueue(db_alias, "from a worker thread")
    done = finished(backend, result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL, done.errors
    note = Note.objects.using(db_alias).get(pk=done.return_value)
    assert note.text == "from a worker thread"


def test_one_error_and_one_worker_per_attempt(backend: Any, worker: Any) -> None:
    failed = finished(backend, tasks.always_fails.enqueue("boom").id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.attempts == 3 and failed.worker_ids == [worker.worker.id] * 3
    assert [e.exception_class_path for e in failed.errors] == ["builtins.ValueError"] * 3
    assert failed.errors[0].exception_class is ValueError
    assert "ValueError: boom" in failed.errors[-1].traceback
    with pytest.raises(ValueError, match="failed"):
        _ = failed.return_value

    key = f"flaky-{id(backend)}"
    recovered = finished(backend, tasks.flaky.enqueue(key, 2).id)
    assert recovered.status == TaskResultStatus.SUCCESSFUL and recovered.return_value == 3
    assert [e.exception_class_path for e in recovered.errors] == ["builtins.ConnectionError"] * 2
    assert len(recovered.worker_ids) == recovered.attempts == 3


def test_timeout_fails_the_attempt(backend: Any, worker: Any) -> None:
    failed = finished(backend, tasks.too_slow.enqueue().id)
    assert failed.status == TaskResultStatus.FAILED
    assert [e.exception_class_path for e in failed.errors] == ["corral.errors.JobTimeout"]


def test_async_task_with_context_queue_and_priority(backend: Any, worker: Any) -> None:
    result = tasks.with_context.enqueue("hi")
    job = backend.app.get_job_sync(result.id)
    assert (job.queue, job.priority) == ("emails", 20)  # Django's priority, as is
    done = finished(backend, result.id)
    assert done.return_value == {"id": result.id, "attempt": 1, "text": "hi"}


@pytest.mark.backends("sqlite")
def test_run_after_defers_and_using_overrides(backend: Any) -> None:
    later = timezone.now() + timedelta(minutes=5)
    result = tasks.write_note.using(run_after=later, priority=-7).enqueue("default", "x")
    job = backend.app.get_job_sync(result.id)
    assert job.state is JobState.DELAYED and result.status == TaskResultStatus.READY
    assert abs((job.run_at - later).total_seconds()) < 0.01 and job.priority == -7

    more = tasks.always_fails.using(attempts=7, timeout=4)
    assert isinstance(more, CorralTask) and (more.attempts, more.backoff) == (7, 0.05)
    stored = backend.app.get_job_sync(more.enqueue("x").id).options
    assert (stored["attempts"], stored["timeout"]) == (7, 4.0)


@pytest.mark.backends("sqlite")
def test_bad_calls_are_refused_clearly(backend: Any) -> None:
    with pytest.raises(InvalidArguments, match="write_note"):
        tasks.write_note.enqueue("default")
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result("no-such-job")
    with pytest.raises(ConfigurationError, match="attempts must be an integer >= 1"):
        corral_task(attempts=0)(tasks.write_note.func)


def test_signals_sent(backend: Any, worker: Any) -> None:
    heard: list[tuple[str, str, str]] = []

    def receiver(name: str) -> Any:
        def receive(sender: Any, task_result: Any, **kwargs: Any) -> None:
            assert sender is CorralBackend
            heard.append((name, task_result.id, str(task_result.status)))

        return receive

    receivers = {
        s: receiver(n)
        for s, n in [
            (task_enqueued, "enqueued"),
            (task_started, "started"),
            (task_finished, "finished"),
        ]
    }
    for signal, receive in receivers.items():
        signal.connect(receive, weak=False)
    try:
        ok = tasks.flaky.enqueue(f"signals-{id(backend)}", 0)
        bad = tasks.always_fails.using(attempts=1).enqueue("no")
        finished(backend, ok.id)
        finished(backend, bad.id)
        wait_until(lambda: sum(1 for h in heard if h[0] == "finished") == 2, what="task_finished")
    finally:
        for signal, receive in receivers.items():
            signal.disconnect(receive)
    assert ("enqueued", ok.id, "READY") in heard and ("enqueued", bad.id, "READY") in heard
    assert ("started", ok.id, "RUNNING") in heard and ("started", bad.id, "RUNNING") in heard
    assert ("finished", ok.id, "SUCCESSFUL") in heard and ("finished", bad.id, "FAILED") in heard


def test_enqueue_on_commit(backend: Any, worker: Any, db_alias: str) -> None:
    queue = backend.app.queue("default")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic(using=db_alias):
        Note.objects.using(db_alias).create(text="rolled back")
        enqueue_on_commit(tasks.write_note, db_alias, "never", using=db_alias)
        raise Rollback
    assert sum(queue.counts_sync().values()) == 0  # nothing was stored

    with pytest.raises(InvalidArguments), transaction.atomic(using=db_alias):
        enqueue_on_commit(tasks.write_note, db_alias, using=db_alias)  # checked now

    with transaction.atomic(using=db_alias):
        row = Note.objects.using(db_alias).create(text="committed")
        enqueue_on_commit(tasks.write_note, db_alias, f"after {row.pk}", using=db_alias)
        assert sum(queue.counts_sync().values()) == 0  # not before the commit
    wait_until(
        lambda: Note.objects.using(db_alias).filter(text=f"after {row.pk}").exists(),
        what="the job enqueued on commit to write its row",
    )
    assert not Note.objects.using(db_alias).filter(text="never").exists()


def test_aenqueue_and_aget_result(backend: Any, worker: Any) -> None:
    heard: list[str] = []

    def on_enqueued(sender: Any, task_result: Any, **kwargs: Any) -> None:
        heard.append(task_result.id)

    async def from_async_code() -> Any:
        try:
            with pytest.raises(CorralError, match=r"await task\.aenqueue\(\) instead"):
                tasks.write_note.enqueue("default", "blocking call on a loop")
            result = await tasks.write_note.aenqueue("default", "from async code")
            assert result.status == TaskResultStatus.READY
            while not (await tasks.write_note.aget_result(result.id)).is_finished:
                await asyncio.sleep(0.02)
            return await tasks.write_note.aget_result(result.id)
        finally:
            await backend.app.close()

    task_enqueued.connect(on_enqueued, weak=False)
    try:
        done = asyncio.run(asyncio.wait_for(from_async_code(), 10))
    finally:
        task_enqueued.disconnect(on_enqueued)
    assert done.status == TaskResultStatus.SUCCESSFUL and heard == [done.id]
    assert Note.objects.get(pk=done.return_value).text == "from async code"


def test_progress_and_retry_through_the_corral_job(backend: Any, worker: Any) -> None:
    done = finished(backend, tasks.count_to.enqueue(3).id)
    assert backend.get_job(done.id).progress == {"done": 3, "of": 3}

    key = f"retry-{id(backend)}"
    failed = finished(backend, tasks.flaky.using(attempts=1).enqueue(key, 1).id)
    assert failed.status == TaskResultStatus.FAILED
    assert backend.get_job(failed.id).retry_sync()  # what a "retry" button does
    again = finished(backend, failed.id)
    assert again.status == TaskResultStatus.SUCCESSFUL and again.return_value == 2
    assert len(again.errors) == 1 and again.worker_ids == [worker.worker.id] * 2
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_job("no-such-job")


def test_options_app_shares_the_projects_corral_app() -> None:
    from corral.contrib.django._compat import task_backends
    from tests.contrib.django.project import corral_app

    app_path = "tests.contrib.django.project.corral_app:app"
    setting = {
        "default": {
            "BACKEND": "corral.contrib.django.CorralBackend",
            "QUEUES": ["default"],
            "OPTIONS": {"app": app_path},
        }
    }
    with override_settings(TASKS=setting):
        backend = task_backends["default"]
        assert backend.app is corral_app.app
        running = WorkerThread(corral_app.app, ["default"])
        try:
            django_job = tasks.write_note.enqueue("default", "shared app")
            native_job = corral_app.shout.enqueue_sync("hi")
            assert finished(backend, django_job.id).status == TaskResultStatus.SUCCESSFUL
            assert native_job.result_sync(timeout=10) == "HI!"  # the same worker ran both
        finally:
            running.stop()
            corral_app.app.close_sync()
    with override_settings(TASKS=setting):  # a new binding of the same app
        assert tasks.write_note.using(priority=5).priority == 5  # registers again, no clash
        assert task_backends["default"].app is corral_app.app


@pytest.mark.backends("sqlite")
def test_each_job_starts_like_a_request(backend: Any, worker: Any) -> None:
    """DEBUG's query log is reset per job, as per request: a worker thread that runs
    job after job does not keep every query."""
    with override_settings(DEBUG=True):
        logged = [
            finished(backend, tasks.queries_logged.enqueue("default").id).return_value
            for _ in range(4)
        ]
    assert logged == [1, 1, 1, 1]


def test_a_failed_task_is_logged_without_an_empty_traceback(
    backend: Any, worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The tasks framework logs task_finished FAILED with logger.exception; sent by
    Corral's worker, outside any except block, that line must not end in
    ``NoneType: None``."""
    caplog.set_level(logging.INFO, logger=TASKS_MODULE)
    bad = tasks.always_fails.using(attempts=1).enqueue("logged")
    finished(backend, bad.id)

    def failed_line() -> Any:
        return [
            r for r in caplog.records if bad.id in r.getMessage() and "FAILED" in r.getMessage()
        ]

    [record] = wait_until(failed_line, what="the FAILED log line")
    assert record.name == TASKS_MODULE and record.levelno == logging.ERROR
    assert record.exc_info is None
    assert "NoneType: None" not in caplog.text
