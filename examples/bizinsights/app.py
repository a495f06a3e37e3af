"""The BizInsights web app (Flask): organisations, integrations, ScheduledReport rows
whose Corral schedules are created and removed with them, one-off jobs, and the job
status and cancel endpoints of the Bull version's ``JobScheduler``.

``flask --app examples.bizinsights.app corral worker`` runs the jobs;
``python -m examples.bizinsights`` runs both."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from corral import Backoff, Job
from corral.errors import ConfigurationError as CorralConfigError
from corral.errors import CorralError, InvalidTransition, JobNotFound, ValidationError
from corral.notify import Email

from . import db, reports
from .tasks import (
    PERIOD_DAYS,
    QUEUES,
    check_alerts,
    corral,
    generate_report,
    jobs,
    sync_integration,
)


class ApiError(Exception):
    """Answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def _field(data: Mapping[str, Any], name: str, kind: type, required: bool = True) -> Any:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) or value == "":
        raise ApiError(400, f"{name!r} must be a {kind.__name__}, got {value!r}")
    return value


def _org(path: str, org_id: Any) -> dict[str, Any]:
    org = db.one(path, "SELECT * FROM organizations WHERE id = ?", org_id)
    if org is None:
        raise ApiError(404, f"no organization {org_id}")
    return org


def _report_out(path: str, row: dict[str, Any]) -> dict[str, Any]:
    org = _org(path, row["organization_id"])
    return {
        "id": row["id"],
        "organizationId": row["organization_id"],
        "name": row["name"],
        "frequency": row["frequency"],
        "recipients": row["recipients"].split(","),
        "schedule": reports.schedule_name(row["id"]),
        "cron": reports.CRON[row["frequency"]],
        "timezone": org["timezone"],
        "nextRunAt": reports.next_run(row["id"], org["timezone"]),
    }


def _ms(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def job_status(job: Job) -> dict[str, Any]:
    """What the Bull version's ``getJobStatus`` answered, plus the options that apply
    to the job (the task's defaults unless the job overrides them)."""
    task = corral.tasks.get(job.name)
    stored = job.options
    options: dict[str, Any] = {}
    if task is not None:
        backoff = task.config.backoff
        options = {
            "attempts": stored.get("attempts", task.config.attempts),
            "backoff": stored.get("backoff")
            or (backoff.to_json() if isinstance(backoff, Backoff) else repr(backoff)),
            "keepCompleted": asdict(task.config.completed),
            "keepFailed": asdict(task.config.failed),
        }
    if "notify" in stored:
        options["notify"] = [t.get("to") or t.get("url") for t in stored["notify"]]
    return {
        "id": job.id,
        "queue": job.queue,
        "name": job.name,
        "state": job.state.value,
        "progress": job.progress,
        "data": {"args": job.args, "kwargs": job.kwargs},
        "attemptsMade": job.attempts,
        "result": job.return_value,
        "failedReason": (job.error or {}).get("message"),
        "errors": [
            {"attempt": e.get("attempt"), "at": e.get("at"), "message": e.get("message")}
            for e in job.errors
        ],
        "createdOn": _ms(job.created_at),
        "processedOn": _ms(job.started_at),
        "finishedOn": _ms(job.finished_at),
        "runAt": _ms(job.run_at),
        "options": options,
    }


def _accepted(job: Job) -> tuple[Any, int]:
    return jsonify(jobId=job.id, queue=job.queue, state=job.state.value), 202


api = Blueprint("api", __name__, url_prefix="/api")


def _path() -> str:
    return str(current_app.config["DATABASE"])


@api.errorhandler(ApiError)
def api_error(exc: ApiError) -> Any:
    return jsonify(error=exc.message), exc.status


@api.errorhandler(CorralError)
def corral_error(exc: CorralError) -> Any:
    status = 400 if isinstance(exc, ValidationError | CorralConfigError) else 503
    return jsonify(error=str(exc)), status


# -- organisations and integrations ------------------------------------------------


@api.post("/organizations")
def create_organization() -> Any:
    data = _body()
    name = _field(data, "name", str)
    tz = _field(data, "timezone", str)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(
            400, f"'timezone' must be an IANA time zone like 'Europe/Berlin', got {tz!r}"
        ) from None
    currency = _field(data, "currency", str, required=False) or "USD"
    org_id = db.insert(
        _path(),
        "INSERT INTO organizations (name, timezone, currency) VALUES (?, ?, ?)",
        name,
        tz,
        currency,
    )
    return jsonify(_org(_path(), org_id)), 201


@api.post("/integrations")
def create_integration() -> Any:
    data = _body()
    org = _org(_path(), _field(data, "organizationId", int))
    platform = _field(data, "platform", str).upper()
    shop = _field(data, "shop", str)
    new_id = db.insert(
        _path(),
        "INSERT INTO integrations (organization_id, platform, shop) VALUES (?, ?, ?)",
        org["id"],
        platform,
        shop,
    )
    return jsonify(db.one(_path(), "SELECT * FROM integrations WHERE id = ?", new_id)), 201


@api.get("/integrations")
def list_integrations() -> Any:
    return jsonify(db.all_rows(_path(), "SELECT * FROM integrations ORDER BY id"))


@api.post("/integrations/<int:integration_id>/sync")
def sync_now(integration_id: int) -> Any:
    """``JobScheduler.scheduleSync``: one sync now; a sync of this integration
    already waiting or running is returned instead of a second one."""
    if db.one(_path(), "SELECT id FROM integrations WHERE id = ?", integration_id) is None:
        raise ApiError(404, f"no integration {integration_id}")
    task = sync_integration.options(dedupe_key=f"sync:{integration_id}")
    return _accepted(task.enqueue_sync(integration_id))


# -- scheduled reports ----------------------------------------------------------------


@api.get("/scheduled-reports")
def list_reports() -> Any:
    rows = db.all_rows(_path(), "SELECT * FROM scheduled_reports ORDER BY id")
    return jsonify([_report_out(_path(), row) for row in rows])


def _recipients(data: Mapping[str, Any]) -> list[str]:
    recipients = data.get("recipients")
    if not isinstance(recipients, list) or not recipients:
        raise ApiError(400, f"'recipients' must be a non-empty list of emails, got {recipients!r}")
    Email(to=recipients)  # a bad address is a 400 naming it, before anything is stored
    return [r.strip() for r in recipients]


@api.post("/scheduled-reports")
def create_report() -> Any:
    data = _body()
    org = _org(_path(), _field(data, "organizationId", int))
    name = _field(data, "name", str)
    frequency = _field(data, "frequency", str)
    if frequency not in reports.CRON:
        raise ApiError(400, f"'frequency' must be one of daily, weekly, monthly, got {frequency!r}")
    recipients = _recipients(data)
    # The row and its schedule together: if the schedule cannot be made, no row.
    with db.connect(_path()) as conn:
        cursor = conn.execute(
            "INSERT INTO scheduled_reports (organization_id, name, frequency, recipients)"
            " VALUES (?, ?, ?, ?)",
            (org["id"], name, frequency, ",".join(recipients)),
        )
        found = conn.execute("SELECT * FROM scheduled_reports WHERE id = ?", (cursor.lastrowid,))
        row = dict(found.fetchone())
        reports.add_schedule(row, org)
    return jsonify(_report_out(_path(), row)), 201


def _report_row(report_id: int) -> dict[str, Any]:
    row = db.one(_path(), "SELECT * FROM scheduled_reports WHERE id = ?", report_id)
    if row is None:
        raise ApiError(404, f"no scheduled report {report_id}")
    return row


@api.get("/scheduled-reports/<int:report_id>")
def get_report(report_id: int) -> Any:
    return jsonify(_report_out(_path(), _report_row(report_id)))


@api.delete("/scheduled-reports/<int:report_id>")
def delete_report(report_id: int) -> Any:
    _report_row(report_id)
    reports.remove_schedule(report_id)
    with db.connect(_path()) as conn:
        conn.execute("DELETE FROM scheduled_reports WHERE id = ?", (report_id,))
    return "", 204


@api.post("/scheduled-reports/<int:report_id>/run")
def run_report_now(report_id: int) -> Any:
    """The report's job now (its schedule's next fire time stays)."""
    _report_row(report_id)
    return _accepted(corral.schedules.run_now_sync(reports.schedule_name(report_id)))


# -- one-off jobs -------------------------------------------------------------------------


@api.post("/reports")
def report_once() -> Any:
    """``JobScheduler.scheduleReport``: one report now (or after ``delay`` seconds),
    emailed to ``recipients`` if given."""
    data = _body()
    org = _org(_path(), _field(data, "organizationId", int))
    report_type = _field(data, "reportType", str)
    if report_type not in PERIOD_DAYS:
        raise ApiError(
            400, f"'reportType' must be one of {', '.join(PERIOD_DAYS)}, got {report_type!r}"
        )
    delay = data.get("delay", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
        raise ApiError(400, f"'delay' must be a number of seconds >= 0, got {delay!r}")
    notify = []
    if data.get("recipients") is not None:
        notify = [Email(to=_recipients(data), template="report", events=["completed"])]
    task = generate_report.options(delay=delay, notify=notify)
    return _accepted(task.enqueue_sync(org["id"], report_type))


@api.post("/alerts/check")
def alerts_now() -> Any:
    """``JobScheduler.scheduleAlertCheck``: ``{"checkType": "all"}`` by default."""
    data = request.get_json(silent=True) or {}
    return _accepted(check_alerts.enqueue_sync(data.get("checkType", "all")))


@api.get("/alerts")
def list_alerts() -> Any:
    return jsonify(db.all_rows(_path(), "SELECT * FROM alerts ORDER BY id"))


# -- job status and cancel --------------------------------------------------------------


def _job(queue: str, job_id: str) -> Job:
    if queue not in QUEUES:
        raise ApiError(404, f"no queue {queue!r}; the queues are {', '.join(QUEUES)}")
    try:
        return corral.get_job_sync(job_id, queue)
    except JobNotFound:
        raise ApiError(404, f"no job {job_id!r} in {queue}") from None


@api.get("/jobs/<queue>/<job_id>")
def get_job(queue: str, job_id: str) -> Any:
    """``JobScheduler.getJobStatus``."""
    return jsonify(job_status(_job(queue, job_id)))


@api.post("/jobs/<queue>/<job_id>/cancel")
def cancel_job(queue: str, job_id: str) -> Any:
    """``JobScheduler.cancelJob``: a waiting or delayed job ends cancelled at once; a
    running one is asked to stop."""
    job = _job(queue, job_id)
    try:
        job.cancel_sync()
    except InvalidTransition as exc:
        raise ApiError(409, str(exc)) from None
    return jsonify(job_status(job.refresh_sync()))


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app: ``DATABASE`` (``$BIZ_DATABASE``, default ``.bizinsights/app.db``),
    ``REPORTS_DIR`` (``$BIZ_REPORTS_DIR``, default ``.bizinsights/reports``), Corral's settings
    (``CORRAL_URL``...), overridden by ``config``."""
    app = Flask("bizinsights")
    app.config.update(
        DATABASE=os.environ.get("BIZ_DATABASE", ".bizinsights/app.db"),
        REPORTS_DIR=os.environ.get("BIZ_REPORTS_DIR", ".bizinsights/reports"),
        CORRAL_QUEUES=QUEUES,
    )
    app.config.update(config or {})
    jobs.init_app(app)
    db.init(app.config["DATABASE"])
    app.register_blueprint(api)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return jsonify(error=exc.description), exc.code

    @app.cli.command("sync-schedules")
    def sync_schedules_command() -> None:
        """Give every ScheduledReport row its schedule; remove orphaned ones."""
        print(reports.reconcile(str(app.config["DATABASE"])))

    return app
