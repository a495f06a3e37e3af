"""Corral jobs as ``django.tasks`` TaskResults."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from corral.backends.base import JobState
from corral.contrib.django._compat import Task, TaskError, TaskResult, TaskResultStatus
from corral.job import Job

__all__ = ["STATUSES", "to_result", "worker_ids"]

#: Django's enum has no "cancelled" (6.0): a cancelled job reads as FAILED, with the
#: JobCancelled error its cancel recorded; a later enum that has one is used as is.
_CANCELLED = getattr(TaskResultStatus, "CANCELLED", TaskResultStatus.FAILED)

#: A job waiting for its next attempt (delayed by backoff) is READY: "ready to be
#: executed again" in Django's words.
STATUSES: dict[JobState, Any] = {
    JobState.WAITING: TaskResultStatus.READY,
    JobState.DELAYED: TaskResultStatus.READY,
    JobState.ACTIVE: TaskResultStatus.RUNNING,
    JobState.COMPLETED: TaskResultStatus.SUCCESSFUL,
    JobState.FAILED: TaskResultStatus.FAILED,
    JobState.CANCELLED: _CANCELLED,
}


def _local(when: datetime | None) -> datetime | None:
    """Corral's aware UTC time as Django shows times (naive local without USE_TZ)."""
    if when is None or settings.USE_TZ:
        return when
    naive: datetime = timezone.make_naive(when)
    return naive


def _class_path(kind: object) -> str:
    # Corral stores builtins bare ("ValueError"); Django wants an importable path.
    name = str(kind or "Exception")
    return name if "." in name else f"builtins.{name}"


def _error(record: dict[str, Any]) -> Any:
    text = record.get("traceback") or f"{record.get('type')}: {record.get('message', '')}"
    return TaskError(exception_class_path=_class_path(record.get("type")), traceback=str(text))


#: States whose latest run recorded no error (it is running or it succeeded).
_RAN = (JobState.ACTIVE, JobState.COMPLETED)


def worker_ids(job: Job) -> list[str]:
    """One worker id per run, oldest first: each failed run's error names its worker;
    a running or completed job's latest run is its own worker's. (Runs, not attempt
    numbers: a job retried by hand counts its attempts afresh but keeps its errors.)"""
    ids = [str(record["worker"]) for record in job.errors if record.get("worker")]
    if job.worker and job.state in _RAN:
        ids.append(job.worker)
    return ids


def to_result(task: Task[Any, Any], job: Job, alias: str, status: Any = None) -> TaskResult[Any]:
    """The TaskResult of ``job`` (``status`` overrides the stored state's: the
    ``task_started`` signal of an attempt that has already finished says RUNNING)."""
    state = job.state
    status = STATUSES[state] if status is None else status
    finished = state.terminal and status != TaskResultStatus.RUNNING
    result: TaskResult[Any] = TaskResult(
        task=task,
        id=job.id,
        status=status,
        enqueued_at=_local(job.created_at) or timezone.now(),
        # Corral keeps the start of the latest attempt only.
        started_at=_local(job.started_at),
        last_attempted_at=_local(job.started_at),
        finished_at=_local(job.finished_at) if finished else None,
        args=job.args,
        kwargs=job.kwargs,
        backend=alias,
        errors=[_error(record) for record in job.errors],
        worker_ids=worker_ids(job),
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", job.return_value)
    return result
