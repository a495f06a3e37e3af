"""BizInsights (seed 001, examples/bizinsights) end to end, as its users drive it: the
Flask app served by werkzeug on loopback, a real ``flask corral worker`` process, a
real SMTP server (aiosmtpd) receiving the reports, on both backends. One system per
backend is shared by the tests of this module."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from examples.bizinsights import db, reports
from examples.bizinsights.app import create_app
from examples.bizinsights.tasks import corral
from werkzeug.serving import make_server

from corral.errors import JobNotFound
from tests.conftest import flush
from tests.notify.mailserver import Received, Recorder, Server, serve

ROOT = Path(__file__).resolve().parents[2]
FLASK = [sys.executable, "-m", "flask", "--app", "examples.bizinsights.app"]
T = TypeVar("T")


def until(check: Callable[[], T], timeout: float = 15.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.05)


@dataclass
class System:
    http: httpx.Client
    mail: Recorder
    worker: subprocess.Popen[bytes]
    log: Path
    database: str

    def post(self, path: str, body: Any = None, status: int = 201) -> Any:
        answer = self.http.post(path, json=body)
        assert answer.status_code == status, answer.text
        return answer.json()

    def job(self, queue: str, job_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/api/jobs/{queue}/{job_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def finished(self, queue: str, job_id: str, timeout: float = 15.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            assert self.worker.poll() is None, self.log.read_text()
            status = self.job(queue, job_id)
            return status if status["state"] in ("completed", "failed", "cancelled") else None

        return until(done, timeout, f"job {job_id} finished")

    def mails_to(self, address: str) -> list[Received]:
        return [m for m in self.mail.received if address in m.recipients]


@pytest.fixture(scope="module")
def smtp() -> Iterator[Server]:
    yield from serve(Recorder())


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def system(
    request: pytest.FixtureRequest, smtp: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp(f"bizinsights-{request.param}")
    if request.param == "redis":
        store = request.getfixturevalue("redis_server").url
        flush(store)
    else:
        store = f"sqlite:///{tmp / 'corral.db'}"
    config = {
        "CORRAL_URL": store,
        "DATABASE": str(tmp / "bizinsights.db"),
        "REPORTS_DIR": str(tmp / "reports"),
    }
    env = {
        **os.environ,
        "CORRAL_URL": store,
        "BIZ_DATABASE": config["DATABASE"],
        "BIZ_REPORTS_DIR": config["REPORTS_DIR"],
        "CORRAL_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}?tls=none",
        "CORRAL_EMAIL_FROM": "BizInsights <reports@bizinsights.example>",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    log = tmp / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [*FLASK, "corral", "worker", "--grace", "2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    http = httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}", timeout=10)
    smtp.handler.reset()
    try:
        until(corral.workers_sync, 20, "the worker registered")
        yield System(http, smtp.handler, worker, log, config["DATABASE"])
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)
        http.close()
        server.shutdown()
        server.server_close()
        serving.join(10)
        corral.close_sync()


def next_nine(tz: str, frequency: str) -> datetime:
    """The first 09:00 (local) after now of a daily, weekly (Monday) or monthly (1st)
    report in ``tz``, computed here without cron."""
    zone = ZoneInfo(tz)
    now = datetime.now(zone)
    day = now.date()
    for _ in range(40):
        at = datetime.combine(day, clock(9), zone)
        fits = {
            "daily": True,
            "weekly": day.weekday() == 0,
            "monthly": day.day == 1,
        }[frequency]
        if fits and at > now:
            return at
        day = day + timedelta(days=1)
    raise AssertionError("no 09:00 in 40 days")


def test_a_scheduled_report_row_creates_and_removes_its_schedule(system: System) -> None:
    made: dict[str, dict[str, Any]] = {}
    for tz, frequency in [
        ("Europe/Berlin", "weekly"),
        ("America/New_York", "daily"),
        ("Asia/Tokyo", "monthly"),
    ]:
        org = system.post("/api/organizations", {"name": f"Org {tz}", "timezone": tz})
        report = system.post(
            "/api/scheduled-reports",
            {
                "organizationId": org["id"],
                "name": f"{frequency} sales",
                "frequency": frequency,
                "recipients": [f"owner@{frequency}.example"],
            },
        )
        expected = next_nine(tz, frequency)
        fires = datetime.fromisoformat(report["nextRunAt"])
        assert fires == expected and fires.utcoffset() == expected.utcoffset(), report
        assert (fires.hour, fires.minute) == (9, 0)  # 09:00 on the organisation's clock
        schedule = corral.schedules.get_sync(report["schedule"])
        assert (schedule.spec.task, schedule.spec.tz) == ("reports.generate", tz)
        assert schedule.spec.cron == {"daily": "0 9 * * *", "weekly": "0 9 * * 1", "monthly": "0 9 1 * *"}[frequency]  # fmt: skip
        assert schedule.spec.notify[0]["to"] == [f"owner@{frequency}.example"]
        assert schedule.next_run_at == expected
        made[frequency] = report
    weekly = made["weekly"]
    assert datetime.fromisoformat(weekly["nextRunAt"]).weekday() == 0  # a Monday in Berlin

    assert system.http.delete(f"/api/scheduled-reports/{weekly['id']}").status_code == 204
    with pytest.raises(JobNotFound):
        corral.schedules.get_sync(weekly["schedule"])
    assert system.http.get(f"/api/scheduled-reports/{weekly['id']}").status_code == 404
    names = {s.name for s in corral.schedules.list_sync()}
    assert made["daily"]["schedule"] in names and made["monthly"]["schedule"] in names


def test_reconcile_gives_rows_made_elsewhere_a_schedule_and_drops_orphans(
    system: System,
) -> None:
    """``flask … sync-schedules`` (run by ``python -m examples.bizinsights`` at start):
    the Bull version's ``scheduleRecurringReports()``."""
    org = system.post("/api/organizations", {"name": "Restored", "timezone": "Australia/Sydney"})
    row = db.insert(
        system.database,
        "INSERT INTO scheduled_reports (organization_id, name, frequency, recipients)"
        " VALUES (?, 'restored', 'daily', 'r@restored.example')",
        org["id"],
    )
    orphan = reports.add_schedule(
        {"id": 999_999, "frequency": "daily", "recipients": "gone@x.example"}, org
    )
    result = reports.reconcile(system.database)
    names = {s.name for s in corral.schedules.list_sync()}
    assert reports.schedule_name(row) in names and orphan.name not in names
    assert result["removed"] == 1
    listed = system.http.get(f"/api/scheduled-reports/{row}").json()
    assert datetime.fromisoformat(listed["nextRunAt"]) == next_nine("Australia/Sydney", "daily")


def test_hourly_sync_and_half_hourly_alerts_are_scheduled_and_run(system: System) -> None:
    def declared() -> dict[str, Any]:
        return {s.spec.task: s for s in corral.schedules.list_sync()}

    schedules = until(
        lambda: {"integrations.sync_all", "alerts.check"} <= set(declared()) and declared(),
        10,
        "the worker declared the cron schedules",
    )
    sync_all, alerts = schedules["integrations.sync_all"], schedules["alerts.check"]
    assert (sync_all.spec.cron, sync_all.spec.queue) == ("0 * * * *", "integration-sync")
    assert (alerts.spec.cron, alerts.spec.queue) == ("*/30 * * * *", "alerts")
    now = datetime.now(ZoneInfo("UTC"))
    assert sync_all.next_run_at is not None and sync_all.next_run_at.minute == 0
    assert sync_all.next_run_at - now <= timedelta(hours=1)
    assert alerts.next_run_at is not None and alerts.next_run_at.minute in (0, 30)

    shop = system.post("/api/organizations", {"name": "Shop Co", "timezone": "Europe/Paris"})
    quiet = system.post("/api/organizations", {"name": "Quiet Co", "timezone": "UTC"})
    integration = system.post(
        "/api/integrations",
        {"organizationId": shop["id"], "platform": "shopify", "shop": "shopco.myshopify.com"},
    )
    # Fire both schedules now instead of waiting for the clock.
    fan_out = corral.schedules.run_now_sync(sync_all.name)
    assert system.finished("integration-sync", fan_out.id)["state"] == "completed"

    def synced() -> bool:
        rows = system.http.get("/api/integrations").json()
        return any(r["id"] == integration["id"] and r["last_synced_at"] for r in rows)

    until(synced, 15, "the integration synced")
    check = corral.schedules.run_now_sync(alerts.name)
    assert system.finished("alerts", check.id)["state"] == "completed"
    raised = {(a["organization_id"], a["kind"]) for a in system.http.get("/api/alerts").json()}
    assert (quiet["id"], "performance") in raised  # no orders in a day
    assert (shop["id"], "performance") not in raised  # its sync brought orders
    assert (shop["id"], "integration") not in raised  # synced just now


def test_running_a_report_now_emails_it_and_the_status_shows_the_job(system: System) -> None:
    org = system.post(
        "/api/organizations",
        {"name": "Acme Coffee", "timezone": "Europe/Berlin", "currency": "EUR"},
    )
    integration = system.post(
        "/api/integrations",
        {"organizationId": org["id"], "platform": "SHOPIFY", "shop": "acme.myshopify.com"},
    )
    sync = system.post(f"/api/integrations/{integration['id']}/sync", status=202)
    assert system.finished("integration-sync", sync["jobId"])["state"] == "completed"
    report = system.post(
        "/api/scheduled-reports",
        {
            "organizationId": org["id"],
            "name": "Weekly sales",
            "frequency": "weekly",
            "recipients": ["owner@acme.example", "cfo@acme.example"],
        },
    )
    started = system.post(f"/api/scheduled-reports/{report['id']}/run", status=202)
    assert started["queue"] == "reports" and started["jobId"].startswith(report["schedule"])

    status = system.finished("reports", started["jobId"])
    assert status["state"] == "completed", status
    assert status["name"] == "reports.generate" and status["finishedOn"] >= status["createdOn"]
    assert status["progress"] == {"step": "done", "percent": 100}
    assert status["data"]["args"] == [org["id"], "weekly"]
    result = status["result"]
    assert result["organization"] == "Acme Coffee" and result["orders"] > 0
    assert Path(result["file"]).read_text().count("\n") == result["orders"] + 1
    # The defaults of the Bull version, as they apply to this job.
    assert status["options"] == {
        "attempts": 3,
        "backoff": {"kind": "exponential", "base": 2.0, "cap": 3600.0, "jitter": True},
        "keepCompleted": {"count": 100, "max_age": None},
        "keepFailed": {"count": 500, "max_age": None},
        "notify": [["owner@acme.example", "cfo@acme.example"]],
    }

    [mail] = until(lambda: system.mails_to("owner@acme.example"), 15, "the report email")
    assert mail.recipients == ["owner@acme.example", "cfo@acme.example"]
    assert mail.message["Subject"] == (
        f"📊 Acme Coffee: your weekly report ({result['orders']} orders, {result['revenue']} EUR)"
    )
    assert mail.message["X-Corral-Job"] == started["jobId"]
    text = mail.message.get_body(("plain",))
    html = mail.message.get_body(("html",))
    assert text is not None and html is not None
    assert f"Revenue: {result['revenue']} EUR" in text.get_content()
    assert "<strong>Acme Coffee</strong>" in html.get_content()
    # The schedule itself still fires next Monday at 09:00 Berlin time.
    after = system.http.get(f"/api/scheduled-reports/{report['id']}").json()
    assert datetime.fromisoformat(after["nextRunAt"]) == next_nine("Europe/Berlin", "weekly")


def test_cancel_a_delayed_report(system: System) -> None:
    org = system.post("/api/organizations", {"name": "Later Inc", "timezone": "UTC"})
    job = system.post(
        "/api/reports",
        {"organizationId": org["id"], "reportType": "daily", "delay": 3600,
         "recipients": ["later@later.example"]},
        status=202,
    )  # fmt: skip
    assert job["state"] == "delayed"
    status = system.job("reports", job["jobId"])
    assert status["state"] == "delayed" and status["runAt"] - status["createdOn"] >= 3_599_000
    cancelled = system.post(f"/api/jobs/reports/{job['jobId']}/cancel", status=200)
    assert cancelled["state"] == "cancelled" and cancelled["attemptsMade"] == 0
    assert system.job("reports", job["jobId"])["state"] == "cancelled"
    again = system.http.post(f"/api/jobs/reports/{job['jobId']}/cancel")
    assert again.status_code in (200, 409) and system.job("reports", job["jobId"])["state"] == "cancelled"  # fmt: skip
    assert system.mails_to("later@later.example") == []


def test_a_failing_sync_is_tried_three_times_with_exponential_backoff(system: System) -> None:
    org = system.post("/api/organizations", {"name": "Down Ltd", "timezone": "UTC"})
    integration = system.post(
        "/api/integrations",
        {"organizationId": org["id"], "platform": "SHOPIFY", "shop": "down-down.myshopify.com"},
    )
    job = system.post(f"/api/integrations/{integration['id']}/sync", status=202)
    status = system.finished("integration-sync", job["jobId"], timeout=20)
    assert status["state"] == "failed" and status["attemptsMade"] == 3
    assert [e["attempt"] for e in status["errors"]] == [1, 2, 3]
    assert all("did not answer" in e["message"] for e in status["errors"])
    first, second, third = (e["at"] for e in status["errors"])
    # Waits drawn from [d/2, d] for d = 2 s, then 4 s: exponential from 2 s. (Corral's
    # default base of 1 s would wait under 1 s, then under 2 s; the upper bounds leave
    # room for a slow machine.)
    assert 1000 <= second - first < 10_000 and 2000 <= third - second < 12_000, status["errors"]


def test_bad_input_answers_400_naming_what_is_wrong(system: System) -> None:
    org = system.post("/api/organizations", {"name": "Strict", "timezone": "UTC"})

    def report(**changes: Any) -> dict[str, Any]:
        body = {"organizationId": org["id"], "name": "r", "frequency": "daily"}
        return {**body, "recipients": ["a@b.example"], **changes}

    cases: list[tuple[str, Any, str]] = [
        ("/api/organizations", {"name": "X", "timezone": "Mars/Olympus"}, "timezone"),
        ("/api/organizations", [1, 2], "JSON object"),
        ("/api/scheduled-reports", report(frequency="hourly"), "frequency"),
        ("/api/scheduled-reports", report(recipients=["not an address"]), "not an address"),
        ("/api/scheduled-reports", report(recipients=None), "recipients"),
        ("/api/scheduled-reports", report(organizationId="1"), "organizationId"),
        (
            "/api/reports",
            {"organizationId": org["id"], "reportType": "daily", "delay": -1},
            "delay",
        ),
    ]
    for path, body, named in cases:
        answer = system.http.post(path, json=body)
        assert answer.status_code == 400 and named in answer.json()["error"], answer.text
    reports = system.http.get("/api/scheduled-reports").json()
    assert all(r["organizationId"] != org["id"] for r in reports)  # nothing half-made
    assert system.http.get("/api/jobs/nope/1").status_code == 404
    assert system.http.get("/api/jobs/reports/no-such-job").status_code == 404
    assert system.http.post("/api/scheduled-reports/999999/run").status_code == 404


def test_the_run_module_starts_the_whole_system_and_ctrl_c_stops_it(
    smtp: Server, tmp_path: Path
) -> None:
    """``python -m examples.bizinsights`` (the README's second command): the demo
    organisation's weekly report runs and is emailed; SIGINT stops web app and worker."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = f"sqlite:///{tmp_path / 'corral.db'}"
    env = {
        **os.environ,
        "PORT": str(port),
        "CORRAL_URL": store,
        "CORRAL_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}?tls=none",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "examples.bizinsights"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    smtp.handler.reset()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            def listed() -> Any:
                assert proc.poll() is None, log.read_text()
                try:
                    return http.get("/api/scheduled-reports").json()
                except httpx.TransportError:
                    return None

            [demo] = until(listed, 20, "the web app answers")
            assert demo["schedule"] == "report-1" and demo["timezone"] == "Europe/Berlin"
            job = http.post("/api/scheduled-reports/1/run").json()
            [mail] = until(lambda: smtp.handler.received, 20, "the demo report email")
            assert mail.recipients == ["owner@acme.example"]
            assert mail.message["X-Corral-Job"] == job["jobId"]
            assert mail.message["Subject"].startswith("📊 Acme Coffee: your weekly report")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, log.read_text()
        assert "stopped" in log.read_text()  # the worker's own shutdown line
        assert (tmp_path / ".bizinsights" / "app.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
            # Its worker runs in a session of its own (Ctrl-C goes to the parent only).
            from corral import Corral

            probe = Corral(store)
            for info in probe.workers_sync():
                os.kill(info.pid, signal.SIGKILL)
            probe.close_sync()
