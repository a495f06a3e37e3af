"""The import job: a Django task (``django.tasks`` API) that Corral stores and
``manage.py corral_worker`` runs."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

from corral import current_job
from corral.contrib.django import corral_task
from examples.smartkosh.ledger.models import ImportJob, Transaction
from examples.smartkosh.ledger.statements import BadRow, Row, chunks, count_rows

log = logging.getLogger("smartkosh")


# Three attempts with exponential backoff for what can pass (the database was
# restarting); a bad row fails at once (BadRow is a NoRetry). The timeout bounds a
# stuck attempt. takes_context: the task records its own result id on the upload.
@corral_task(
    queue_name="imports", attempts=3, backoff="exponential", timeout=600, takes_context=True
)
def import_statement(context: Any, import_id: int, path: str) -> dict[str, int]:
    """Import the CSV at ``path`` into the transactions of ImportJob ``import_id``,
    chunk by chunk (each chunk one database transaction), reporting progress.

    The import is not marked completed here: the job is not, until its worker has
    recorded the outcome (and a worker killed in between runs it again). signals.py
    marks it completed or failed, and tells the user, once the job has finished."""
    upload = ImportJob.objects.select_related("user").get(pk=import_id)
    file = Path(path)
    total = count_rows(file)
    ImportJob.objects.filter(pk=import_id).update(
        status=ImportJob.PROCESSING,
        task_id=context.task_result.id,
        runs=F("runs") + 1,
        rows_total=total,
        rows_done=0,
        imported=0,
        skipped=0,
        error="",
        error_line=None,
        finished_at=None,
    )
    job = current_job()
    done = imported = skipped = 0
    try:
        for batch in chunks(file, settings.IMPORT_CHUNK_ROWS):
            with transaction.atomic():
                new = _write(upload, batch)
                done, imported, skipped = (
                    done + len(batch),
                    imported + new,
                    skipped + len(batch) - new,
                )
                ImportJob.objects.filter(pk=import_id).update(
                    rows_done=done, imported=imported, skipped=skipped
                )
            job.progress_sync(
                {
                    "rows": done,
                    "total": max(total, done),
                    "imported": imported,
                    "skipped": skipped,
                    "line": batch[-1].line,
                }
            )
            job.raise_if_cancelled()
            if settings.IMPORT_CHUNK_PAUSE:
                time.sleep(settings.IMPORT_CHUNK_PAUSE)
    except BadRow as exc:
        # Recorded here, where the line is known; signals.py marks it failed and
        # tells the user once the job has failed for good.
        ImportJob.objects.filter(pk=import_id).update(error=str(exc), error_line=exc.line)
        raise
    log.info("import %s: %s rows, %s new", import_id, done, imported)
    return {"rows": done, "imported": imported, "skipped": skipped}


def _write(upload: ImportJob, batch: list[Row]) -> int:
    """Insert the rows not already there (by natural key); how many were new."""
    keys = [row.fingerprint for row in batch]
    there = set(
        Transaction.objects.filter(user=upload.user, fingerprint__in=keys).values_list(
            "fingerprint", flat=True
        )
    )
    new = [
        Transaction(
            user=upload.user,
            source=upload,
            line=row.line,
            date=row.date,
            description=row.description,
            amount=row.amount,
            category=row.category,
            fingerprint=row.fingerprint,
        )
        for row in batch
        if row.fingerprint not in there
    ]
    # ignore_conflicts: a row another import of the same statement inserted meanwhile
    # is skipped by the unique constraint, not an error.
    Transaction.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)
