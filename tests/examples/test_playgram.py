"""The Playgram example (seed 003) driven as its users would: its own launcher
(``python -m examples.playgram``: the FastAPI app and a real worker process), HTTP on
loopback, a real webhook receiver checking every signature with the
``standardwebhooks`` reference library, a real SMTP server, the stand-in ManyChat
API, on both backends."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from examples.playgram.manychat import FakeManyChat

from corral.notify import Webhook
from tests.conftest import flush
from tests.notify.mailserver import Recorder, Server, serve
from tests.notify.receiver import Receiver
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ["webhooks", "manychat", "email", "analytics", "export"]
ADMIN = "/corral/api/v1"  # Corral's own API, mounted in the app
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()) is not None and value is not False:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class System:
    home: Path  # the launcher's working directory
    secret: str
    proc: subprocess.Popen[bytes]
    log: Path
    http: httpx.Client
    receiver: Receiver  # webhooks: ManyChat's endpoint (/manychat...) and job outcomes (/events)
    manychat: FakeManyChat  # the ManyChat API the sync jobs call
    mail: Server

    def post(self, path: str, body: Any = None, status: int = 202, **params: Any) -> Any:
        answer = self.http.post(path, json=body, params=params)
        assert answer.status_code == status, answer.text
        return answer.json()

    def job(self, queue: str, job_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/api/jobs/{queue}/{job_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def until(self, queue: str, job_id: str, state: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.job(queue, job_id)
            return job if job["state"] == state else None

        return wait_for(reached, f"{queue} job {job_id} {state}")

    def admin(self, path: str) -> Any:
        answer = self.http.post(ADMIN + path)
        assert answer.status_code < 300, answer.text
        return answer.json()

    def hooks(self, path: str) -> list[Any]:
        with self.receiver.lock:
            return [r for r in self.receiver.requests if r.path == path]

    def events(self, kind: str) -> dict[str, Any]:
        """Job-outcome webhooks received (``job.failed``, ``job.completed``) by job id."""
        return {
            body["data"]["id"]: body
            for r in self.hooks("/events")
            if (body := orjson.loads(r.body))["type"] == kind
        }


@pytest.fixture(scope="module", params=["redis", "sqlite"])
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """One running Playgram per backend, shared by this module's tests."""
    home = tmp_path_factory.mktemp(f"playgram-{request.param}")
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url
        flush(url)
    else:
        url = "sqlite:///corral.db"  # the default, relative: the app and worker share it
    secret = Webhook.new_secret()
    receiver = Receiver([secret])
    manychat = FakeManyChat(secret)
    mail_server = serve(Recorder())
    mail = next(mail_server)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "CORRAL_URL": url,
        "PLAYGRAM_WEBHOOK_SECRET": secret,
        "PLAYGRAM_WEBHOOK_ALLOW": "127.0.0.1",  # the receiver is on loopback
        "PLAYGRAM_EVENTS_URL": receiver.url("/events"),
        "PLAYGRAM_MANYCHAT_URL": manychat.api_url,
        "PLAYGRAM_MANYCHAT_WEBHOOK_URL": receiver.url("/manychat"),
        "CORRAL_SMTP_URL": f"smtp://127.0.0.1:{mail.port}?tls=none",
        "CORRAL_EMAIL_FROM": "Playgram <hello@playgram.example>",
    }
    log = home / "playgram.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "examples.playgram", "--port", str(port), "-c", "10"],
            cwd=home,  # as a user would from any directory: relative paths land here
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    running = System(home, secret, proc, log, http, receiver, manychat, mail)

    def ready() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            health = http.get("/api/queues/health").json()
        except httpx.TransportError:
            return False
        return all(q["workers"] == 1 for q in health)

    try:
        wait_for(ready, "the app and its worker", timeout=30)
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)  # as Ctrl-C or a service manager would stop it
        try:
            code = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        http.close()
        receiver.close()
        manychat.close()
        next(mail_server, None)
        output = log.read_text()
        assert code == 0, output
        worker = int(output.split("worker pid ", 1)[1].split()[0])
        assert " stopped (processed " in output  # the worker stopped cleanly, and first
        assert not Path(f"/proc/{worker}").exists()


def test_fire_and_forget_sends_signed_webhooks_to_manychat(system: System) -> None:
    started = time.monotonic()
    for user in ("u1", "u2", "u3"):
        assert system.post("/api/qr/qr_fire/scan", {"userId": user}, 200) == {"success": True}
    assert time.monotonic() - started < 2  # the answer does not wait for the delivery

    def delivered() -> list[Any] | None:
        got = [
            r
            for r in system.hooks("/manychat")
            if orjson.loads(r.body)["data"]["qrCode"] == "qr_fire"
        ]
        return got if len(got) == 3 else None

    hooks = wait_for(delivered, "three scans at ManyChat")
    assert all(r.verified_with == [system.secret] for r in hooks)
    bodies = [orjson.loads(r.body) for r in hooks]
    assert {b["type"] for b in bodies} == {"qr.scanned"}
    assert sorted(b["data"]["userId"] for b in bodies) == ["u1", "u2", "u3"]
    ids = {r.headers["webhook-id"] for r in hooks}
    assert len(ids) == 3 and all(i.startswith("scan_") for i in ids)


def test_a_failing_receiver_gets_the_same_delivery_again(system: System) -> None:
    webhook = {
        "webhookId": "wh_flaky_1",
        "event": "qr.validated",
        "url": system.receiver.url("/flaky"),
        "payload": {"qrCode": "ABC123", "userId": "user_456"},
        "headers": {"X-API-Key": "key-1"},
    }
    added = system.post("/api/jobs/webhooks", {"data": webhook})
    assert added["jobId"] == "wh_flaky_1" and added["queue"] == "webhooks"

    # The receiver answered 500: the job waits for its retry, 2.5 to 5 s away (the
    # seed's exponential backoff from 5 s, with jitter).
    waiting = system.until("webhooks", "wh_flaky_1", "delayed")
    assert waiting["attempts"] == 1 and "500" in waiting["error"]["message"]
    due = datetime.fromisoformat(waiting["runAt"]).timestamp() - time.time()
    assert 1.5 < due <= 5.5, due
    system.admin("/queues/webhooks/jobs/wh_flaky_1/promote")  # rather than wait for it

    done = system.until("webhooks", "wh_flaky_1", "completed")
    assert done["result"] == {"webhookId": "wh_flaky_1", "event": "qr.validated", "attempt": 2}
    first, second = system.hooks("/flaky")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "wh_flaky_1"
    assert first.verified_with == second.verified_with == [system.secret]
    assert second.headers["x-api-key"] == "key-1"
    assert orjson.loads(second.body) == {"type": "qr.validated", "data": webhook["payload"]}
    # Adding the same webhook again returns the job already done: no second delivery.
    assert system.post("/api/jobs/webhooks", {"data": webhook})["state"] == "completed"


def test_wait_for_completion_answers_with_the_result(system: System) -> None:
    webhook = {"webhookId": "wh_wait_1", "event": "booking.created", "url": system.receiver.url()}
    answer = system.post("/api/jobs/webhooks", {"data": webhook}, 200, wait=10)
    assert answer == {
        "jobId": "wh_wait_1",
        "queue": "webhooks",
        "state": "completed",
        "result": {"webhookId": "wh_wait_1", "event": "booking.created", "attempt": 1},
    }
    assert [r.headers["webhook-id"] for r in system.hooks("/ok")].count("wh_wait_1") == 1


def test_wait_past_its_timeout_answers_202_with_where_to_look(system: System) -> None:
    webhook = {"webhookId": "wh_slow_1", "event": "e", "url": system.receiver.url("/slow")}
    started = time.monotonic()
    answer = system.post("/api/jobs/webhooks", {"data": webhook}, 202, wait=0.5)
    assert time.monotonic() - started < 3
    assert answer["timedOut"] is True and answer["state"] in ("waiting", "active")
    assert answer["statusUrl"] == "/api/jobs/webhooks/wh_slow_1"
    wait_for(lambda: system.hooks("/slow"), "the slow delivery to start")
    system.receiver.release.set()  # the receiver answers now: the job carries on to the end
    status = system.until("webhooks", "wh_slow_1", "completed")
    assert status["result"]["attempt"] == 1


def test_bulk_enqueue_adds_every_job_in_one_call(system: System) -> None:
    jobs: list[dict[str, Any]] = [
        {"queue": "analytics", "data": {"qrCodeId": "qr_bulk", "event": "scan", "data": {}}}
        for _ in range(40)
    ]
    jobs += [
        {
            "queue": "manychat",
            "data": {
                "type": "contact",
                "action": "create",
                "toolId": "tool_bulk",
                "data": {"subscriberId": f"s{n}", "name": f"Sub {n}", "email": f"s{n}@x.io"},
            },
        }
        for n in range(5)
    ]
    jobs.append({"queue": "webhooks", "data": {"webhookId": "wh_bulk", "event": "e", "url": "x"}})
    bad = system.http.post("/api/jobs/bulk", json={"jobs": jobs})
    assert bad.status_code == 422 and "url" in bad.text  # one bad job: none is added
    jobs[-1]["data"]["url"] = system.receiver.url("/bulk")

    added = system.post("/api/jobs/bulk", {"jobs": jobs})

    assert added["count"] == 46 and len(set(added["jobIds"])) == 46
    for job_id in added["jobIds"][:40]:
        system.until("analytics", job_id, "completed")
    last = system.until("analytics", added["jobIds"][39], "completed")
    assert last["result"]["qrCodeId"] == "qr_bulk"
    wait_for(lambda: system.hooks("/bulk"), "the bulk webhook")
    synced = wait_for(
        lambda: [s for s in system.manychat.synced if s["toolId"] == "tool_bulk"] or None,
        "contacts at ManyChat",
    )
    wait_for(lambda: len(synced) == 5 or None, "five contacts")


def test_health_answers_every_queue_with_the_seeds_fields(system: System) -> None:
    system.admin("/queues/export/pause")
    export = {"userId": "ops", "exportType": "json", "dataType": "contacts"}
    job_id = system.post("/api/jobs/export", {"data": export})["jobId"]
    try:
        health = system.http.get("/api/queues/health").json()
    finally:
        system.admin("/queues/export/resume")

    assert [q["name"] for q in health] == QUEUES
    fields = {"name", "waiting", "active", "completed", "failed", "delayed", "healthy"}
    assert all(fields <= set(q) for q in health)
    rows = {q["name"]: q for q in health}
    assert rows["export"]["waiting"] == 1
    assert rows["export"]["healthy"] is False and rows["export"]["reason"] == (
        "paused with jobs waiting"
    )
    corral = {q["name"]: q for q in system.http.get(ADMIN + "/queues").json()}
    for name in ("webhooks", "manychat", "email", "analytics"):
        assert rows[name]["healthy"] is True
        assert rows[name]["workers"] == 1
        assert rows[name]["completed"] == corral.get(name, {}).get("completed", 0)
    system.until("export", job_id, "completed")
    after = {q["name"]: q for q in system.http.get("/api/queues/health").json()}
    assert after["export"]["healthy"] is True and after["export"]["completed"] >= 1


def test_dead_letter_set_lists_failures_and_retries_them(system: System) -> None:
    system.manychat.down = True
    sync = {"type": "tag", "action": "create", "toolId": "tool_dlq", "data": {"tag": "vip"}}
    ids = [
        system.post("/api/jobs/manychat", {"data": sync, "options": {"attempts": 1}})["jobId"]
        for _ in range(2)
    ]
    for job_id in ids:
        system.until("manychat", job_id, "failed")

    listed = system.http.get("/api/queues/manychat/failed").json()
    dead = {j["jobId"]: j for j in listed if j["jobId"] in ids}
    assert len(dead) == 2
    assert all("503" in j["error"]["message"] for j in dead.values())
    assert all(j["args"] == ["tag", "create", "tool_dlq", {"tag": "vip"}] for j in dead.values())

    # Each one also went out as a signed job.failed webhook (Corral's notifications).
    def alerted() -> dict[str, Any] | None:
        events = system.events("job.failed")
        return events if events.keys() >= set(ids) else None

    alerts = wait_for(alerted, "the job.failed webhooks")
    assert all(alerts[i]["data"]["task"] == "manychat.sync" for i in ids)
    assert all(r.verified_with == [system.secret] for r in system.hooks("/events"))

    system.manychat.down = False  # ManyChat is back
    retried = system.post(f"/api/queues/manychat/failed/{ids[0]}/retry", status=200)
    assert retried["jobId"] == ids[0]
    system.until("manychat", ids[0], "completed")
    assert system.post("/api/queues/manychat/failed/retry", status=200) == {"retried": 1}
    system.until("manychat", ids[1], "completed")
    left = system.http.get("/api/queues/manychat/failed").json()
    assert not {j["jobId"] for j in left} & set(ids)
    again = system.http.post(f"/api/queues/manychat/failed/{ids[0]}/retry")
    assert again.status_code == 409


def test_manychat_rate_limit_waits_without_spending_an_attempt(system: System) -> None:
    system.manychat.rate_limited = 1
    sync = {"type": "field", "action": "update", "toolId": "tool_429", "data": {"f": 1}}
    added = system.post("/api/jobs/manychat", {"data": sync, "options": {"attempts": 1}})
    retry = system.until("manychat", added["jobId"], "delayed")  # after ManyChat's 429
    assert retry["attempts"] == 0  # given back: the one attempt is still there
    due = datetime.fromisoformat(retry["runAt"]).timestamp() - time.time()
    assert 25 < due <= 30  # ManyChat's Retry-After
    system.admin(f"/queues/manychat/jobs/{added['jobId']}/promote")
    done = system.until("manychat", added["jobId"], "completed")
    assert done["result"] == {"synced": "field.update", "toolId": "tool_429"}
    assert [s["data"] for s in system.manychat.synced if s["toolId"] == "tool_429"] == [{"f": 1}]


def test_a_gone_webhook_fails_for_good_at_once(system: System) -> None:
    webhook = {"webhookId": "wh_gone_1", "event": "e", "url": system.receiver.url("/gone")}
    system.post("/api/jobs/webhooks", {"data": webhook})
    failed = system.until("webhooks", "wh_gone_1", "failed")
    assert failed["attempts"] == 1 and "410" in failed["error"]["message"]


def test_export_writes_csv_and_json_files_and_returns_their_path(system: System) -> None:
    scans = [("u1", "scan"), ("u2", "scan"), ("u3", "validation")]
    added = system.post(
        "/api/jobs/bulk",
        {
            "jobs": [
                {
                    "queue": "analytics",
                    "data": {"qrCodeId": "qr_exp", "event": e, "data": {"userId": u}},
                }
                for u, e in scans
            ]
        },
    )
    for job_id in added["jobIds"]:
        system.until("analytics", job_id, "completed")

    export: dict[str, Any] = {"userId": "user_123", "exportType": "csv", "dataType": "qr_scans"}
    export["filters"] = {"qrCodeId": "qr_exp", "event": "scan"}
    as_csv = system.post("/api/jobs/export", {"data": export}, 200, wait=10)["result"]
    path = Path(as_csv["path"])
    assert path.parent == system.home / "playgram-data" / "exports"
    assert path.suffix == ".csv" and as_csv["rows"] == 2
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    # (sorted: the worker ran the three scans at once, in any order)
    assert sorted((r["qrCodeId"], r["event"], r["userId"]) for r in rows) == [
        ("qr_exp", "scan", "u1"),
        ("qr_exp", "scan", "u2"),
    ]

    export = {**export, "exportType": "json", "filters": {"qrCodeId": "qr_exp"}}
    done = system.post("/api/jobs/export", {"data": export}, 200, wait=10)
    as_json = done["result"]
    records = json.loads(Path(as_json["path"]).read_text())
    assert sorted((r["userId"], r["event"]) for r in records) == scans
    assert as_json["rows"] == 3 and as_json["format"] == "json"
    download = system.http.get(f"/api/exports/{done['jobId']}/download")
    assert download.status_code == 200 and json.loads(download.content) == records
    # "Your export is ready": a signed job.completed webhook with the path.
    ready = wait_for(lambda: system.events("job.completed").get(done["jobId"]), "export ready")
    assert ready["data"]["result"]["path"] == as_json["path"]

    bad = system.http.post("/api/jobs/export", json={"data": {**export, "exportType": "pdf"}})
    assert bad.status_code == 422


def test_a_delayed_email_waits_an_hour_until_promoted(system: System) -> None:
    email = {
        "to": "ana@example.com",
        "subject": "Your QR code is live",
        "template": "welcome",
        "data": {"name": "Ana", "qrCode": "QR-7"},
    }
    added = system.post("/api/jobs/email", {"data": email, "options": {"delay": 3_600_000}})
    job = system.job("email", added["jobId"])
    assert job["state"] == "delayed"
    due = datetime.fromisoformat(job["runAt"]) - datetime.now(UTC)
    assert 3540 < due.total_seconds() <= 3600
    assert not system.mail.handler.received

    system.admin(f"/queues/email/jobs/{added['jobId']}/promote")
    system.until("email", added["jobId"], "completed")
    [mail] = [m for m in system.mail.handler.received if m.recipients == ["ana@example.com"]]
    assert mail.message["Subject"] == "Your QR code is live"
    text = mail.message.get_content()
    assert text.startswith("Hi Ana,") and "Your QR code QR-7 is live." in text
    assert added["jobId"] in mail.message["Message-ID"]


def test_bull_priority_one_runs_first(system: System) -> None:
    system.admin("/queues/analytics/pause")
    try:
        order = []
        for priority in (None, 5, 1):
            options = {} if priority is None else {"priority": priority}
            data = {"qrCodeId": f"qr_p{priority}", "event": "scan"}
            order.append(system.post("/api/jobs/analytics", {"data": data, "options": options}))
        waiting = system.http.get(ADMIN + "/queues/analytics/jobs", params={"state": "waiting"})
        claim_order = [j["id"] for j in waiting.json()["jobs"]]
    finally:
        system.admin("/queues/analytics/resume")
    assert claim_order == [order[2]["jobId"], order[1]["jobId"], order[0]["jobId"]]
    for added in order:
        system.until("analytics", added["jobId"], "completed")


def test_bad_input_is_a_clear_422(system: System) -> None:
    bad_id = {"webhookId": "no spaces allowed", "event": "e", "url": system.receiver.url()}
    answer = system.http.post("/api/jobs/webhooks", json={"data": bad_id})
    assert answer.status_code == 422 and "webhookId" in answer.text
    unknown = system.http.post("/api/jobs/analytics", json={"data": {"qrCodeId": "q"}})
    assert unknown.status_code == 422 and "event" in unknown.text
    assert system.http.get("/api/queues/nope/failed").status_code == 422
