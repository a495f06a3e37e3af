# ruff: noqa: RUF012  (Django reads Meta options and choices from class attributes)
"""Statements (ImportJob), their transactions and the user's notifications."""

from __future__ import annotations

from django.conf import settings
from django.db import models


def statement_path(upload: ImportJob, filename: str) -> str:
    return f"statements/{upload.user_id}/{filename}"


class ImportJob(models.Model):
    """One uploaded CSV statement and the state of its import."""

    QUEUED, PROCESSING, COMPLETED, FAILED = "queued", "processing", "completed", "failed"
    STATUSES = [(s, s) for s in (QUEUED, PROCESSING, COMPLETED, FAILED)]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    file = models.FileField(upload_to=statement_path)
    filename = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED)
    #: The django.tasks result id (the Corral job id) of the run that imports it.
    task_id = models.CharField(max_length=64, blank=True)
    runs = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    error_line = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"


class Transaction(models.Model):
    """A statement line. ``fingerprint`` is its natural key (date, amount,
    description and which occurrence of that triple in its file): unique per user,
    so importing a file again, or retrying a half-done import, adds nothing twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    source = models.ForeignKey(ImportJob, null=True, on_delete=models.SET_NULL)
    line = models.PositiveIntegerField()
    date = models.DateField()
    description = models.CharField(max_length=255)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    category = models.CharField(max_length=64, blank=True)
    fingerprint = models.CharField(max_length=64)

    class Meta:
        ordering = ["date", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "fingerprint"], name="one_row_per_natural_key")
        ]


class Notification(models.Model):
    """An in-app notification (the seed's NotificationsMenu)."""

    SUCCESS, ERROR = "success", "error"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    kind = models.CharField(max_length=16, choices=[(SUCCESS, SUCCESS), (ERROR, ERROR)])
    title = models.CharField(max_length=200)
    message = models.TextField()
    link = models.CharField(max_length=200, blank=True)
    import_job = models.ForeignKey(ImportJob, null=True, on_delete=models.CASCADE)
    read = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
