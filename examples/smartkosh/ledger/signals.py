"""A failed import, told to its user: Django's ``task_finished`` signal, which the
Corral worker sends once a job has completed, failed for good (its attempts spent,
or a NoRetry such as a bad row) or been cancelled.

Signals are in-process and best-effort (a worker killed between the job's failure
and its receiver never sends it), so the pages repair what a lost signal left
undone: :func:`settle` is also called for imports still in flight whose job has
failed, and records the failure once."""

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
        record_failure(task_result.args[0], task_result)


def record_failure(import_id: int, task_result: Any) -> None:
    """Mark the import failed and notify its user, once, if ``task_result`` (its
    current job) has failed and the import is still in flight."""
    if task_result.status != TaskResultStatus.FAILED:
        return
    with transaction.atomic():
        upload = ImportJob.objects.select_for_update().filter(pk=import_id).first()
        if upload is None or upload.status not in IN_FLIGHT or upload.task_id != task_result.id:
            return  # done already, or a newer run owns the import
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
    """Record the failures of these imports' jobs that no signal reported."""
    for upload in uploads:
        if upload.status in IN_FLIGHT and upload.task_id:
            try:
                result = default_task_backend.get_result(upload.task_id)
            except TaskResultDoesNotExist:
                continue
            record_failure(upload.pk, result)
