"""examples/pos_sync (seed 000) driven as its users would: the run module starts the
web app, two worker processes and the fake POS (60 small, fast pages; one 429 and
one 503 per restaurant); HTTP to the app on loopback, its SSE stream, the email at a
real SMTP server; on both backends."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral import Corral
from tests.conftest import flush
from tests.notify.mailserver import Recorder, Server, free_port, serve
from tests.redis_server import RedisServer
from tests.web.conftest import Event, sse_events

ROOT = Path(__file__).resolve().parents[2]
PAGES, PAGE_SIZE, ORDERS = 60, 10, 595  # the last page holds 5 orders


@dataclass
class System:
    url: str  # the web app
    pos: str  # the fake POS
    store: str
    mail: Server


@pytest.fixture(scope="module")
def mail() -> Iterator[Server]:
    yield from serve(Recorder())


def wait_for(check: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return value


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.TransportError:
        return False


def live_workers(store: str) -> list[Any]:
    async def read() -> list[Any]:
        corral = Corral(store)
        try:
            return await corral.workers()
        finally:
            await corral.close()

    return asyncio.run(read())


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def system(
    request: pytest.FixtureRequest, mail: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """``python -m examples.pos_sync`` as a process, stopped with SIGTERM at the end."""
    work = tmp_path_factory.mktemp(f"pos-{request.param}")
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        flush(redis.url)
        store = redis.url
    else:
        store = f"sqlite:///{work / 'corral.db'}"
    web_port, pos_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "REDIS_"))},
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "CORRAL_URL": store,
        "CORRAL_CONCURRENCY": "1",  # two jobs at once: one on each worker
        "CORRAL_SMTP_URL": f"smtp://127.0.0.1:{mail.port}?tls=none",
        "CORRAL_EMAIL_FROM": "POS Sync <noreply@pos-sync.example>",
        "POS_PORT": str(web_port),
        "FAKE_POS_PORT": str(pos_port),
        "FAKE_POS_ORDERS": str(ORDERS),
        "FAKE_POS_PAGE_SIZE": str(PAGE_SIZE),
        "FAKE_POS_DELAY": "0.01",
        "FAKE_POS_FAULTS": "429@7,503@31",
        "FAKE_POS_RETRY_AFTER": "1",
        "POS_ORDERS_DB": str(work / "orders.db"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.pos_sync"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{web_port}"
        wait_for(lambda: proc.poll() is not None or answers(f"{url}/"), "the web app")
        assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
        wait_for(lambda: len(live_workers(store)) == 2, "two workers registered")
        yield System(url, f"http://127.0.0.1:{pos_port}", store, mail)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    log = output.decode()
    assert proc.returncode == 0, log
    assert log.count("stopped (processed") == 2, log  # both workers stopped cleanly
    assert not live_workers(store)  # ...and left the registry


async def follow(http: httpx.AsyncClient, job_id: str) -> list[Event]:
    async with http.stream("GET", f"/api/sync-jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [event async for event in sse_events(response)]


async def both_active_on_two_workers(corral: Corral, ids: list[str]) -> set[str]:
    """Poll until both jobs run at once; their workers (each runs one job at a time)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        jobs = [await corral.get_job(i, "sync") for i in ids]
        if all(j.state == "active" for j in jobs):
            return {str(j.to_dict()["worker"]) for j in jobs}
        await asyncio.sleep(0.02)
    raise AssertionError("the two syncs never ran at the same time")


async def test_connect_pos_syncs_every_page_with_live_progress_and_an_email(
    system: System,
) -> None:
    system.mail.handler.reset()
    corral = Corral(system.store)
    async with httpx.AsyncClient(base_url=system.url, timeout=30) as http:
        started = time.monotonic()
        first = await http.post(
            "/api/restaurants/r-1/connect-pos", json={"posType": "toast", "email": "ana@r1.example"}
        )
        assert first.status_code == 202, first.text
        assert time.monotonic() - started < 2  # at once: the sync itself takes seconds
        job_id = first.json()["jobId"]
        assert first.json()["progressPage"] == f"/sync/{job_id}"
        stream = asyncio.create_task(follow(http, job_id))
        second = await http.post(
            "/api/restaurants/r-2/connect-pos", json={"email": "bo@r2.example"}
        )
        other_id = second.json()["jobId"]
        # Clicking again while r-1 syncs gives the same job, not a second sync.
        again = await http.post(
            "/api/restaurants/r-1/connect-pos", json={"email": "ana@r1.example"}
        )
        assert again.json()["jobId"] == job_id

        status = (await http.get(f"/api/sync-jobs/{job_id}")).json()
        assert status["status"] in ("queued", "processing") and set(status) >= {"progress"}

        workers = await both_active_on_two_workers(corral, [job_id, other_id])
        assert len(workers) == 2  # the two worker processes share the queue
        registered = await corral.workers()
        assert sorted(w.concurrency for w in registered) == [1, 1]  # CORRAL_CONCURRENCY

        events = await asyncio.wait_for(stream, 30)
        final = (await http.get(f"/api/sync-jobs/{job_id}")).json()
        dashboard = await http.get("/dashboard/r-1")

    # The stream: the state first, then each page's progress up to the last, then the end.
    assert events[0].name == "state" and events[-1].name == "end"
    pages = [e.data["progress"] for e in events if e.name == "progress"]
    assert len(pages) >= 10  # pages are reported as they come (some may coalesce)
    numbers = [p["currentPage"] for p in pages]
    assert numbers == sorted(set(numbers)), numbers
    assert pages[-1] == {
        "currentPage": PAGES,
        "totalPages": PAGES,
        "ordersProcessed": ORDERS,
        "estimatedTotal": ORDERS,
    }
    assert events[-1].data["status"] == "completed"
    assert events[-1].data["result"] == {"restaurantId": "r-1", "orders": ORDERS, "pages": PAGES}
    assert final == {
        "status": "completed",
        "progress": pages[-1],
        "result": events[-1].data["result"],
    }

    # The POS refused twice per restaurant; neither refusal spent an attempt.
    for jid in (job_id, other_id):
        job = await corral.get_job(jid, "sync")
        await job.result(timeout=30)  # r-2's sync may still be on its last pages
        await job.refresh()
        assert job.state == "completed" and job.to_dict()["attempts"] == 1
        assert job.return_value["orders"] == ORDERS

    stats = httpx.get(f"{system.pos}/stats").json()
    assert stats["429"] == 2 and stats["503"] == 2, stats

    # The email, through Corral's notifications, with the count and both links.
    def mail_to(address: str) -> Any:
        return [r for r in system.mail.handler.received if address in r.recipients]

    wait_for(lambda: mail_to("ana@r1.example") and mail_to("bo@r2.example"), "the emails")
    (received,) = mail_to("ana@r1.example")
    message = received.message
    assert message["Subject"] == f"✅ Your {ORDERS:,} orders are ready!"
    body = message.get_body(("plain",)).get_content()
    assert f"View Dashboard → {system.url}/dashboard/r-1" in body
    assert f"{system.url}/corral/queues/sync/jobs/{job_id}" in body  # job_url
    assert dashboard.status_code == 200 and f"{ORDERS:,} orders" in dashboard.text
    await corral.close()


async def test_the_progress_page_uses_the_stream_under_a_strict_csp(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.url, timeout=10) as http:
        job_id = (
            await http.post("/api/restaurants/r-3/connect-pos", json={"email": "cy@r3.example"})
        ).json()["jobId"]
        page = await http.get(f"/sync/{job_id}")
        script = await http.get("/static/sync.js")
        missing = await http.get("/sync/no-such-job")
        api_missing = await http.get("/api/sync-jobs/no-such-job")
        stream_missing = await http.get("/api/sync-jobs/no-such-job/events")
        bad_email = await http.post("/api/restaurants/r-4/connect-pos", json={"email": "nope"})
        bad_pos = await http.post(
            "/api/restaurants/r-4/connect-pos", json={"email": "a@b.example", "posType": "abacus"}
        )
        ops = await http.get("/corral/api/v1/queues/sync")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "<script>" not in page.text
    assert '<script src="/static/sync.js"' in page.text and 'id="bar"' in page.text
    assert "new EventSource(`/api/sync-jobs/" in script.text and "/events`" in script.text
    assert [missing.status_code, api_missing.status_code, stream_missing.status_code] == [404] * 3
    assert bad_email.status_code == 422 and "email" in bad_email.text
    assert bad_pos.status_code == 422 and "posType" in bad_pos.text
    # Corral's API and dashboard are mounted for the team (loopback without keys).
    assert ops.status_code == 200 and ops.json()["name"] == "sync"


async def test_a_browser_connects_and_watches_the_bar_fill(system: System) -> None:
    """Real Chromium: the form enqueues, the progress page's EventSource moves the bar
    (seen part-way, while the POS makes the worker back off) to the end, and the
    dashboard link appears; no console error (a CSP violation would be one)."""
    chromium = os.environ.get("CORRAL_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        if os.environ.get("CI"):
            pytest.fail(f"{chromium} not found")
        pytest.skip(f"{chromium} not found")
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            page.set_default_timeout(20_000)
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("response", lambda r: r.status >= 400 and errors.append(f"{r.status} {r.url}"))
            await page.goto(f"{system.url}/")
            await page.fill("input[name=restaurant]", "r-browser")
            await page.fill("input[name=email]", "dee@browser.example")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{system.url}/sync/*")
            # Part-way: the bar rests on a page while the POS makes the worker back off.
            # (Polled from here: wait_for_function evaluates strings, which the CSP forbids.)
            seen: set[str] = set()
            deadline = time.monotonic() + 20
            while not any(0 < int(v) < PAGES for v in seen) and time.monotonic() < deadline:
                seen.add(await page.get_attribute("#bar", "value") or "0")
                await asyncio.sleep(0.02)
            assert any(0 < int(v) < PAGES for v in seen), seen
            detail = await page.text_content("#detail")
            assert detail and detail.startswith("Page ") and f"about {ORDERS}" in detail
            await page.wait_for_selector("#dashboard:not([hidden])")
            assert await page.text_content("#status") == f"✅ Your {ORDERS} orders are ready!"
            assert await page.eval_on_selector("#bar", "b => b.value === b.max && b.max === 60")
            await page.click("#dashboard")
            await page.wait_for_url(f"{system.url}/dashboard/r-browser")
            assert f"{ORDERS} orders" in (await page.text_content(".big") or "")
        finally:
            await browser.close()
    assert not errors, errors


def test_the_local_mailbox_prints_what_it_receives() -> None:
    """The sink ``python -m examples.pos_sync`` starts when no relay is configured."""
    import smtplib
    from email.message import EmailMessage

    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "examples.pos_sync.mailbox", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: sink.poll() is not None or _listening(port), "the mailbox", 10)
        message = EmailMessage()
        message["From"], message["To"] = "noreply@pos-sync.example", "ana@r1.example"
        message["Subject"] = "✅ Your 5,962 orders are ready!"
        message.set_content("View Dashboard → http://127.0.0.1:8000/dashboard/r42\n.dot line\n")
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
            smtp.send_message(message)
    finally:
        sink.terminate()
        output, _ = sink.communicate(timeout=10)
    assert "To: ana@r1.example" in output
    assert "Subject: ✅ Your 5,962 orders are ready!" in output
    assert "View Dashboard → http://127.0.0.1:8000/dashboard/r42" in output
    assert "\n   .dot line" in output  # a dot-stuffed line comes back whole


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [("POS_WORKERS", "two"), ("CORRAL_CONCURRENCY", "0"), ("FAKE_POS_FAULTS", "429-7")],
)
def test_a_bad_setting_is_one_line_naming_it(variable: str, value: str) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "REDIS_"))},
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        variable: value,
    }
    out = subprocess.run(
        [sys.executable, "-m", "examples.pos_sync"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {variable} must be") and value in out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1
