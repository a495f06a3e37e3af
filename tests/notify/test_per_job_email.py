"""A per-job ``Email`` target (``task.options(notify=Email(...))``) is delivered: the
relay rebuilds it from the job's stored options (a real worker and SMTP server)."""

from __future__ import annotations

import asyncio
import time

from corral import Corral
from corral.notify import Email, NotifySettings
from corral.notify.registry import target_from_json, target_json
from corral.worker import Worker
from tests.notify.mailserver import Server


def test_every_target_kind_round_trips_through_its_stored_form() -> None:
    from corral.notify import Webhook

    for target in (
        Email(to="a@example.com", subject="s {{ job.id }}"),
        Webhook("https://hooks.example.com/x", secret=Webhook.new_secret()),
    ):
        assert target_from_json(target_json(target)) == target


async def test_a_per_job_email_is_delivered(store_url: str, plain_server: Server) -> None:
    settings = NotifySettings(
        smtp_url=f"smtp://127.0.0.1:{plain_server.port}?tls=none", sender="corral@example.com"
    )
    app = Corral(store_url, notifications=settings)

    @app.task(name="t.double", queue="mine")
    async def double(x: int) -> int:
        return x * 2

    mine = Email(to="me@example.com", subject="got {{ result }}", text="done", events=["completed"])
    job = await double.options(notify=mine).enqueue(21)
    await double.enqueue(1)  # no per-job target: no email
    worker = Worker(app, ["mine"], block=0.2)
    running = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 10
        while not plain_server.handler.received:
            assert time.monotonic() < deadline, "no email arrived"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a second email would show up by now
    finally:
        worker.stop()
        await running
        await app.close()
    [mail] = plain_server.handler.received
    assert mail.recipients == ["me@example.com"] and mail.message["Subject"] == "got 42"
    assert mail.message["X-Corral-Job"] == job.id
