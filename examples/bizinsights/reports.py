"""ScheduledReport rows ↔ Corral schedules: one schedule per row, named
``report-<id>``, firing at 09:00 in the organisation's time zone and carrying an
``Email`` to the row's recipients (a notification of the report job)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from corral.errors import JobNotFound
from corral.notify import Email
from corral.schedules import Schedule

from . import db
from .tasks import corral

#: When each kind of report runs, in the organisation's own time zone.
CRON = {
    "daily": "0 9 * * *",  # 09:00 every day
    "weekly": "0 9 * * 1",  # 09:00 on Mondays
    "monthly": "0 9 1 * *",  # 09:00 on the 1st
}
PREFIX = "report-"


def schedule_name(report_id: int) -> str:
    return f"{PREFIX}{report_id}"


def add_schedule(report: dict[str, Any], org: dict[str, Any]) -> Schedule:
    """Create (or replace) the schedule of one ScheduledReport row."""
    return corral.schedules.add_sync(
        schedule_name(report["id"]),
        "reports.generate",
        cron=CRON[report["frequency"]],
        tz=org["timezone"],
        args=[org["id"], report["frequency"]],
        notify=Email(
            to=report["recipients"].split(","),
            template="report",  # templates/report.subject.txt, report.txt, report.html
            events=["completed"],
            name=schedule_name(report["id"]),
        ),
    )


def remove_schedule(report_id: int) -> bool:
    return corral.schedules.remove_sync(schedule_name(report_id))


def next_run(report_id: int, tz: str) -> str | None:
    """The schedule's next fire time in the organisation's time zone (ISO 8601)."""
    try:
        schedule = corral.schedules.get_sync(schedule_name(report_id))
    except JobNotFound:
        return None
    when: datetime | None = schedule.next_run_at
    return when.astimezone(ZoneInfo(tz)).isoformat() if when else None


def reconcile(path: str) -> dict[str, int]:
    """Make the schedules match the table (the Bull version's
    ``scheduleRecurringReports()``): a schedule per row, none without a row. Run at
    start-up; rows changed through the API keep their schedules in step themselves."""
    rows = db.all_rows(
        path,
        "SELECT r.*, o.timezone FROM scheduled_reports r"
        " JOIN organizations o ON o.id = r.organization_id",
    )
    for row in rows:
        org = {"id": row["organization_id"], "timezone": row["timezone"]}
        add_schedule(row, org)
    wanted = {schedule_name(row["id"]) for row in rows}
    removed = 0
    for schedule in corral.schedules.list_sync():
        if schedule.name.startswith(PREFIX) and schedule.name not in wanted:
            removed += corral.schedules.remove_sync(schedule.name)
    return {"scheduled": len(rows), "removed": removed}
