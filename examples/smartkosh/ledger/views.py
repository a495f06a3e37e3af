"""Pages and the JSON the pages poll: upload, import progress, failed imports with
retry, notifications."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from corral.contrib.django import enqueue_on_commit
from examples.smartkosh.ledger.models import ImportJob, Notification, Transaction
from examples.smartkosh.ledger.signals import IN_FLIGHT, settle
from examples.smartkosh.ledger.tasks import import_statement

try:
    from django.tasks import default_task_backend
    from django.tasks.exceptions import TaskResultDoesNotExist
except ImportError:  # Django 5.2 and the django-tasks backport
    from django_tasks import default_task_backend
    from django_tasks.exceptions import TaskResultDoesNotExist

MAX_UPLOAD = 20 * 1024 * 1024


class StatementForm(forms.Form):
    file = forms.FileField(label="CSV statement")

    def clean_file(self) -> Any:
        file = self.cleaned_data["file"]
        if not file.name.lower().endswith(".csv"):
            raise forms.ValidationError(f"{file.name} is not a .csv file")
        if file.size == 0:
            raise forms.ValidationError(f"{file.name} is empty")
        if file.size > MAX_UPLOAD:
            raise forms.ValidationError(f"{file.name} is larger than 20 MB")
        return file


class RetryForm(StatementForm):
    file = forms.FileField(label="Corrected file (optional)", required=False)

    def clean_file(self) -> Any:
        return super().clean_file() if self.cleaned_data.get("file") else None


def unread_notifications(request: HttpRequest) -> dict[str, int]:
    """Template context: the unread count on every page's menu."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"unread": 0}
    return {"unread": Notification.objects.filter(user=user, read=False).count()}


def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.save())
        return redirect("imports")
    return render(
        request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200
    )


@login_required
def imports(request: HttpRequest) -> HttpResponse:
    """The upload form and the user's imports. POST saves the file under MEDIA_ROOT
    and enqueues its import once the row is committed."""
    form = StatementForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not form.is_valid():
            return _invalid(request, form, "ledger/imports.html", _imports_context(request))
        with transaction.atomic():
            upload = ImportJob(
                user=request.user, filename=Path(form.cleaned_data["file"].name).name
            )
            upload.file.save(upload.filename, form.cleaned_data["file"], save=False)
            upload.save()
            # The job gets the file's path, never its content; it is enqueued when
            # this transaction commits, so it never runs before its row exists.
            enqueue_on_commit(import_statement, upload.pk, upload.file.path)
        if _wants_json(request):
            return JsonResponse(_import_json(upload), status=202)
        return redirect("import-detail", upload.pk)
    return render(request, "ledger/imports.html", {"form": form, **_imports_context(request)})


def _imports_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "uploads": ImportJob.objects.filter(user=request.user)[:50],
        "transactions": Transaction.objects.filter(user=request.user).count(),
    }


@login_required
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    upload = get_object_or_404(ImportJob, pk=pk, user=request.user)
    return render(request, "ledger/import_detail.html", {"upload": upload, "retry": RetryForm()})


@login_required
def failed_imports(request: HttpRequest) -> HttpResponse:
    uploads = ImportJob.objects.filter(user=request.user, status=ImportJob.FAILED)
    return render(request, "ledger/failed.html", {"uploads": uploads, "retry": RetryForm()})


@login_required
@require_POST
def retry_import(request: HttpRequest, pk: int) -> HttpResponse:
    """Run a failed import again: with a corrected file, a new job for it; without,
    the same Corral job once more (``get_job(id).retry_sync()``). Rows already
    imported are skipped either way (their natural key is unique)."""
    form = RetryForm(request.POST, request.FILES)
    with transaction.atomic():
        upload = get_object_or_404(ImportJob.objects.select_for_update(), pk=pk, user=request.user)
        if upload.status != ImportJob.FAILED:
            return _refused(request, pk, f"{upload.filename} is {upload.status}, not failed", 409)
        if not form.is_valid():
            return _refused(request, pk, " ".join(form.errors.get("file", [])), 400)
        fixed = form.cleaned_data["file"]
        old_file = upload.file.name
        if fixed is not None:
            upload.file.save(upload.filename, fixed, save=False)
        upload.status, upload.error, upload.error_line = ImportJob.QUEUED, "", None
        if fixed is None and upload.task_id and _retry_job(upload.task_id):
            upload.save()  # the same job runs again (retried first: a failure rolls back)
        else:
            upload.task_id = ""  # the new job sets its own when it starts
            upload.save()
            enqueue_on_commit(import_statement, upload.pk, upload.file.path)
        if fixed is not None:
            storage = upload.file.storage
            transaction.on_commit(lambda: storage.delete(old_file))
    if _wants_json(request):
        return JsonResponse(_import_json(upload), status=202)
    messages.success(request, f"{upload.filename} is queued again.")
    return redirect("import-detail", pk)


def _retry_job(task_id: str) -> bool:
    """Run the failed Corral job behind ``task_id`` again; False if it is gone
    (removed by retention)."""
    try:
        default_task_backend.get_job(task_id).retry_sync()
    except TaskResultDoesNotExist:
        return False
    return True


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    settle(ImportJob.objects.filter(user=request.user, status__in=IN_FLIGHT))
    items = Notification.objects.filter(user=request.user)[:100]
    if request.method == "POST":  # "mark all as read"
        Notification.objects.filter(user=request.user, read=False).update(read=True)
        return redirect("notifications")
    return render(request, "ledger/notifications.html", {"items": items})


# -- JSON (what the pages poll) ----------------------------------------------------------


@login_required
def api_import(request: HttpRequest, pk: int) -> JsonResponse:
    upload = get_object_or_404(ImportJob, pk=pk, user=request.user)
    if upload.status in IN_FLIGHT:
        settle([upload])
        upload.refresh_from_db()
    return JsonResponse(_import_json(upload))


@login_required
def api_imports(request: HttpRequest) -> JsonResponse:
    uploads = ImportJob.objects.filter(user=request.user)
    status = request.GET.get("status")
    if status:
        if status not in dict(ImportJob.STATUSES):
            return JsonResponse(
                {"error": f"status {status!r}: use one of {', '.join(dict(ImportJob.STATUSES))}"},
                status=400,
            )
        uploads = uploads.filter(status=status)
    return JsonResponse({"imports": [_import_json(u, job=False) for u in uploads[:100]]})


@login_required
def api_notifications(request: HttpRequest) -> JsonResponse:
    settle(ImportJob.objects.filter(user=request.user, status__in=IN_FLIGHT))
    items = Notification.objects.filter(user=request.user)
    return JsonResponse(
        {
            "unread": items.filter(read=False).count(),
            "notifications": [
                {
                    "id": n.pk,
                    "kind": n.kind,
                    "title": n.title,
                    "message": n.message,
                    "link": n.link,
                    "importId": n.import_job_id,
                    "read": n.read,
                    "createdAt": n.created_at.isoformat(),
                }
                for n in items[:100]
            ],
        }
    )


@login_required
def api_transactions(request: HttpRequest) -> JsonResponse:
    rows = Transaction.objects.filter(user=request.user)
    return JsonResponse(
        {
            "count": rows.count(),
            "transactions": [
                {
                    "date": t.date.isoformat(),
                    "description": t.description,
                    "amount": str(t.amount),
                    "category": t.category,
                    "importId": t.source_id,
                    "line": t.line,
                }
                for t in rows[:500]
            ],
        }
    )


def _import_json(upload: ImportJob, job: bool = True) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": upload.pk,
        "file": upload.filename,
        "status": upload.status,
        "rows": upload.rows_done,
        "total": upload.rows_total,
        "imported": upload.imported,
        "skipped": upload.skipped,
        "error": upload.error or None,
        "errorLine": upload.error_line,
        "runs": upload.runs,
        "taskId": upload.task_id or None,
        "createdAt": upload.created_at.isoformat(),
        "finishedAt": upload.finished_at.isoformat() if upload.finished_at else None,
    }
    if job and upload.task_id:
        # Django's view of the job (status, errors per attempt), and Corral's
        # progress, which Django's API lacks.
        try:
            result = default_task_backend.get_result(upload.task_id)
            corral_job = default_task_backend.get_job(upload.task_id)
        except TaskResultDoesNotExist:
            pass
        else:
            answer["task"] = {
                "status": str(result.status),
                "attempts": len(result.worker_ids),
                "errors": [e.exception_class_path for e in result.errors],
                "progress": corral_job.progress,
            }
    return answer


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _invalid(
    request: HttpRequest, form: forms.Form, template: str, context: dict[str, Any]
) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"error": " ".join(e for errs in form.errors.values() for e in errs)}, status=400
        )
    return render(request, template, {"form": form, **context}, status=400)


def _refused(request: HttpRequest, pk: int, why: str, status: int) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": why}, status=status)
    messages.error(request, why)
    return redirect("import-detail", pk)
