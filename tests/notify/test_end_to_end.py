"""Notifications end to end with real parts, on both backends: a worker runs the job,
the outbox and the relay hand its outcome to delivery jobs, which send a signed webhook
to a real receiver (checked with the ``standardwebhooks`` reference library) and an
email through a real SMTP server with STARTTLS (issue 17 §5)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from corral import Corral, JobState
from corral.notify import Email, NotifySettings, Webhook
from corral.notify.registry import NOTIFY_QUEUE
from tests.notify.mailserver import SENDER, Server, relay
from tests.notify.receiver import Receiver
from tests.worker.conftest import Workers
from tests.worker.procs import WorkerProc

FAST = (0.1, 0.2, 0.2)


def settings(ca_file: str, port: int, **extra: Any) -> NotifySettings:
    values: dict[str, Any] = {
        "allow": ("127.0.0.1",),
        "smtp_url": relay(port, ca_file),
        "sender": SENDER,
        "timeout": 5.0,
        "retries": FAST,
        "context": {"dashboard_url": "https://ops.example.com/corral"},
    }
    return NotifySettings(**{**values, **extra})


@pytest.fixture
async def make_app(store_url: str) -> AsyncIterator[Callable[[NotifySettings], Corral]]:
    apps: list[Corral] = []

    def make(notify: NotifySettings) -> Corral:
        app = Corral(store_url, notifications=notify)
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.close()


@pytest.fixture
def app(
    make_app: Callable[[NotifySettings], Corral], starttls_server: Server, ca_file: str
) -> Corral:
    """An app delivering to the loopback receiver and the STARTTLS SMTP server."""
    return make_app(settings(ca_file, starttls_server.port))


@contextlib.asynccontextmanager
async def running(app: Corral, queue: str = "default", **options: Any) -> AsyncIterator[None]:
    """An in-process worker of ``app`` for the block (stopped and awaited after it)."""
    workers = Workers(app)
    workers.start([queue], **options)
    try:
        yield
    finally:
        await workers.stop_all()


async def until(check: Callable[[], Any], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def test_a_completed_job_sends_one_signed_webhook_and_one_email(
    app: Corral, receiver: Receiver, secret: str, starttls_server: Server
) -> None:
    mails = starttls_server.handler.received

    @app.task(
        name="pos.sync",
        queue="sync",
        notify=[
            Webhook(receiver.url("/hooks"), secret=secret, events=["completed"]),
            Email(
                to="owner@example.com",
                subject="Your {{ result.orders }} orders are ready",
                text="Synced {{ result.orders }} orders. View Dashboard: {{ job_url }}",
                events=["completed"],
            ),
        ],
    )
    async def sync(restaurant: int) -> dict[str, int]:
        return {"orders": 5962}

    job = await sync.enqueue(42)
    async with running(app, "sync"):
        await until(lambda: receiver.requests and mails)
        await asyncio.sleep(0.6)  # more relay rounds and deliveries would show up by now
    [hook] = receiver.requests
    assert hook.verified_with == [secret]
    body = orjson.loads(hook.body)
    assert body["type"] == "job.completed"
    assert body["data"]["id"] == job.id and body["data"]["task"] == "pos.sync"
    assert "result" not in body["data"]  # thin unless asked for
    [mail] = mails
    assert mail.tls and mail.recipients == ["owner@example.com"]
    assert mail.message["Subject"] == "Your 5962 orders are ready"
    text = mail.message.get_content()
    assert f"https://ops.example.com/corral/queues/sync/jobs/{job.id}" in text
    # One notice: the webhook's id and the email's Message-ID name the same outcome.
    assert hook.headers["webhook-id"] in mail.message["Message-ID"]


async def test_a_receiver_failing_once_gets_the_same_delivery_again(
    app: Corral, receiver: Receiver, secret: str
) -> None:

    @app.task(name="t.flaky", notify=Webhook(receiver.url("/flaky"), secret=secret))
    async def job() -> int:
        return 1

    await job.enqueue()
    async with running(app):
        await until(lambda: len(receiver.requests) == 2)
        [delivery] = await _wait_jobs(app, "completed", 1)
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.verified_with == second.verified_with == [secret]
    assert delivery.attempts == 2
    assert "500" in delivery.errors[0]["message"]
    assert await app.notify_endpoints() == []  # failing, then cleared by the success


async def _wait_jobs(app: Corral, state: str, count: int, timeout: float = 15.0) -> list[Any]:
    notify = app.queue(NOTIFY_QUEUE)
    async with asyncio.timeout(timeout):
        while len(found := await notify.jobs(state, limit=1000)) < count:
            await asyncio.sleep(0.02)
    return [await j.refresh() for j in found]


async def test_410_disables_the_endpoint_and_a_redirect_is_not_followed(
    make_app: Callable[[NotifySettings], Corral],
    receiver: Receiver,
    secret: str,
    starttls_server: Server,
    ca_file: str,
) -> None:
    app = make_app(settings(ca_file, starttls_server.port, retries=()))
    gone = Webhook(receiver.url("/gone"), secret=secret)
    moved = Webhook(receiver.url("/redirect"), secret=secret)

    @app.task(name="t.hooked", notify=[gone, moved])
    async def hooked() -> int:
        return 1

    await hooked.enqueue()
    async with running(app):
        failed = await _wait_jobs(app, "failed", 2)
        states = {s.key: s for s in await app.notify_endpoints()}
        await hooked.enqueue()  # the gone endpoint is not called again
        await _wait_jobs(app, "failed", 4)
    assert states[gone.key].disabled and "410" in states[gone.key].reason
    assert states[moved.key].failing and not states[moved.key].disabled
    assert "302" in states[moved.key].reason
    assert sorted(receiver.paths()) == ["/gone", "/redirect", "/redirect"]  # never /target
    messages = [r.errors[-1]["message"] for r in failed]
    assert any("now disabled" in m for m in messages)


async def test_100_failures_send_a_bounded_number_of_emails_and_one_digest(
    make_app: Callable[[NotifySettings], Corral], starttls_server: Server, ca_file: str
) -> None:
    # The first failure opens a 60 s window: all 100 fall in it. Its digest waits for
    # the window's end as a delayed job; the test promotes it instead of waiting.
    app = make_app(settings(ca_file, starttls_server.port, failure_limit=3, failure_window=60))
    mails = starttls_server.handler.received

    @app.task(name="reports.generate", attempts=1, notify=Email(to="ops@example.com"))
    async def generate(n: int) -> None:
        raise ValueError(f"report {n} has no data")

    await generate.enqueue_many([(n,) for n in range(100)])
    async with running(app, concurrency=50):
        delivered = await _wait_jobs(app, "completed", 100, timeout=30)
        [digest] = await app.queue(NOTIFY_QUEUE).jobs("delayed")
        assert len(mails) == 3
        await digest.promote()
        await until(lambda: len(mails) == 4)
        await asyncio.sleep(0.3)
    folded = [j for j in delivered if j.return_value.get("folded")]
    assert len(folded) == 97
    subjects = [m.message["Subject"] for m in mails]
    assert subjects[:3] == ["❌ reports.generate failed"] * 3
    assert subjects[3] == "97 more failures of reports.generate in the last 1 min"
    assert "https://ops.example.com/corral/" in mails[3].message.get_content()


async def test_a_per_job_webhook_is_stored_with_the_job(
    app: Corral, receiver: Receiver, secret: str
) -> None:

    @app.task(name="t.plain")
    async def plain(x: int) -> int:
        return x * 2

    hook = Webhook(receiver.url("/mine"), secret=secret, result=True)
    job = await plain.options(notify=[hook]).enqueue(21)
    await plain.enqueue(1)  # no target: no webhook
    async with running(app):
        await until(lambda: receiver.requests)
        await asyncio.sleep(0.6)
    [hook_request] = receiver.requests
    body = orjson.loads(hook_request.body)
    assert body["data"]["id"] == job.id and body["data"]["result"] == 42


@pytest.mark.backends("redis", "sqlite")
async def test_a_worker_killed_right_after_completing_still_delivers(
    store_url: str, receiver: Receiver, secret: str, tmp_path: Path
) -> None:
    env = {"NOTIFY_URL": receiver.url("/killed"), "NOTIFY_SECRET": secret}
    app = Corral(store_url)
    try:
        job = await app.enqueue("notified.add", [2, 3], queue="notified")
        crashing = WorkerProc(
            store_url,
            tmp_path / "crash.log",
            app="tests.apps.notified:app",
            env={**env, "CORRAL_FAULTS": "after_ack=1.0"},
        )
        try:
            assert await asyncio.to_thread(crashing.proc.wait, 30) == 86, crashing.output()
        finally:
            crashing.close()
        # Killed right after the completion was recorded: nothing was delivered, the
        # outcome waits in the outbox.
        assert (await job.refresh()).state == JobState.COMPLETED
        assert receiver.requests == []
        backend = await app.backend()
        assert await backend.outbox_size("notified") == 1
        healthy = WorkerProc(store_url, tmp_path / "ok.log", app="tests.apps.notified:app", env=env)
        try:
            await until(lambda: receiver.requests, 30)
            await asyncio.sleep(0.5)
        finally:
            healthy.close()
    finally:
        await app.close()
    [hook] = receiver.requests
    assert hook.verified_with == [secret]
    assert orjson.loads(hook.body)["data"]["id"] == job.id
