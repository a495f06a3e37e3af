"""An import's outcome, recorded and told to its user: Django's ``task_finished``
signal, which the Corral worker sends once a job has completed, failed for good (its
attempts spent, or a NoRetry such as a bad row) or been cancelled.

Only then is the import completed or failed: the job's body ends before its worker
has recorded the outcome, and a worker killed in between runs the job again, so an
import marked completed by the body could still be running (the task's status says
RUNNING) and could go back to processing.

Signals are in-process and best-effort (a worker killed between the job's outcome
and its receiver never sends it), so the pages repair what a lost signal left
undone: :func:`settle` is also called for imports still in flight whose job has
finished, and records the outcome once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from examples.smartkosh.ledger.models import ImportJob, Notification

try:
    from django.tasks import TaskResultStatus, default_task_backend
    from django.tasks.exceptions import TaskResultDoesNotExist
    from django.tasks.signals import task_finished
except ImportError:  # Django 5.2 and the django-tasks backport
    from django_tasks import TaskResultStatus, default_task_backend
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_finished

IN_FLIGHT = (ImportJob.QUEUED, ImportJob.PROCESSING)


@receiver(task_finished)
def import_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    from examples.smartkosh.ledger.tasks import import_statement

    if task_result.task.module_path == import_statement.module_path:
        record_outcome(task_result.args[0], task_result)


def record_outcome(import_id: int, task_result: Any) -> None:
    """Mark the import completed or failed and notify its user, once, if
    ``task_result`` (its current job) has finished and the import is still in
    flight."""
    if task_result.status not in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED):
        return
    with transaction.atomic():
        upload = ImportJob.objects.select_for_update().filter(pk=import_id).first()
        if upload is None or upload.status not in IN_FLIGHT or upload.task_id != task_result.id:
            return  # done already, or a newer run owns the import
        if task_result.status == TaskResultStatus.SUCCESSFUL:
            _completed(upload, task_result.return_value)
        else:
            _failed(upload, task_result)


def _completed(upload: ImportJob, outcome: dict[str, int]) -> None:
    upload.status = ImportJob.COMPLETED
    upload.rows_done = upload.rows_total = outcome["rows"]
    upload.imported, upload.skipped = outcome["imported"], outcome["skipped"]
    upload.finished_at = timezone.now()
    upload.save(
        update_fields=["status", "rows_done", "rows_total", "imported", "skipped", "finished_at"]
    )
    again = f"; {upload.skipped} were already there" if upload.skipped else ""
    Notification.objects.create(
        user=upload.user,
        kind=Notification.SUCCESS,
        title=f"{upload.filename} imported",
        message=f"Imported {upload.imported} new transactions from {upload.filename}{again}.",
        link=reverse("import-detail", args=[upload.pk]),
        import_job=upload,
    )


def _failed(upload: ImportJob, task_result: Any) -> None:
    if not upload.error:  # not a bad row: the exception's last line
        last = task_result.errors[-1] if task_result.errors else None
        lines = (last.traceback if last else "").strip().splitlines()
        upload.error = lines[-1] if lines else "the import failed"
    upload.status = ImportJob.FAILED
    upload.finished_at = timezone.now()
    upload.save(update_fields=["status", "error", "finished_at"])
    Notification.objects.create(
        user=upload.user,
        kind=Notification.ERROR,
        title=f"{upload.filename} could not be imported",
        message=f"{upload.error}. Fix the file and retry it from Failed imports.",
        link=reverse("failed-imports"),
        import_job=upload,
    )


def settle(uploads: Iterable[ImportJob]) -> None:
    """Record the outcomes of these imports' jobs that no signal reported."""
    for upload in uploads:
        if upload.status in IN_FLIGHT and upload.task_id:
            try:
                result = default_task_backend.get_result(upload.task_id)
            except TaskResultDoesNotExist:
                continue
            record_outcome(upload.pk, result)
