"""``app.schedules.add(..., notify=...)``: every job of a schedule (each tick and each
run now) carries its targets, so one tenant's schedule emails that tenant's
recipients; a real worker and a real SMTP server, on both backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from corral import Corral
from corral.errors import ConfigurationError, JobNotFound
from corral.notify import Email, NotifySettings, Webhook
from corral.worker import Worker
from tests.notify.conftest import plain_server  # noqa: F401 - a fixture
from tests.notify.mailserver import Server


def make_app(url: str, smtp_port: int | None) -> Corral:
    settings = None
    if smtp_port is not None:
        settings = NotifySettings(
            smtp_url=f"smtp://127.0.0.1:{smtp_port}?tls=none", sender="corral@example.com"
        )
    app = Corral(url, notifications=settings)

    @app.task(name="s.report", queue="sched")
    async def report(org: str) -> dict[str, str]:
        return {"org": org}

    return app


@pytest.fixture
async def app(store_url: str, plain_server: Server) -> AsyncIterator[Corral]:  # noqa: F811
    app = make_app(store_url, plain_server.port)
    yield app
    await app.close()


def mail_for(org: str) -> Email:
    return Email(to=f"owner@{org}.example", subject="Report for {{ result.org }}", text="ok")


async def test_each_tick_and_run_now_mail_the_schedules_own_recipients(
    app: Corral,
    plain_server: Server,  # noqa: F811
) -> None:
    await app.schedules.add("acme", "s.report", every=0.3, args=["acme"], notify=mail_for("acme"))
    await app.schedules.add("globex", "s.report", cron="0 9 * * 1", args=["globex"], notify=[mail_for("globex")])  # fmt: skip
    now = await app.schedules.run_now("globex")
    assert now.options["notify"][0]["to"] == ["owner@globex.example"]
    worker = Worker(app, ["sched"], block=0.2)
    running = asyncio.create_task(worker.run())
    mails = plain_server.handler.received
    try:
        deadline = time.monotonic() + 10
        while not (
            {"owner@acme.example", "owner@globex.example"} <= {m.recipients[0] for m in mails}
        ):
            assert time.monotonic() < deadline, [m.recipients for m in mails]
            await asyncio.sleep(0.05)
        await app.schedules.remove("acme")
    finally:
        worker.stop()
        await running
    subjects = {m.recipients[0]: m.message["Subject"] for m in mails}
    assert subjects["owner@acme.example"] == "Report for acme"
    assert subjects["owner@globex.example"] == "Report for globex"
    ticked = [j for j in await app.queue("sched").jobs("completed") if j.id.startswith("acme@")]
    assert ticked and all(j.options["notify"][0]["to"] == ["owner@acme.example"] for j in ticked)


async def test_listings_hide_webhook_secrets(app: Corral) -> None:
    secret = Webhook.new_secret()
    hook = Webhook("https://hooks.example.com/x", secret=secret)
    made = await app.schedules.add("hooked", "s.report", every=60, args=["a"], notify=hook)
    listed = (await app.schedules.get("hooked")).to_dict()
    assert listed["notify"][0]["secret"] == "***" and secret not in str(listed)
    assert made.spec.targets()[0].key == hook.key  # the stored one keeps it for delivery


async def test_notify_needs_notifications_and_real_targets(store_url: str) -> None:
    app = make_app(store_url, None)
    try:
        with pytest.raises(ConfigurationError, match="notifications are not set up"):
            await app.schedules.add("a", "s.report", every=60, args=["a"], notify=mail_for("a"))
        with pytest.raises(ConfigurationError, match="notify"):
            await app.schedules.add("a", "s.report", every=60, args=["a"], notify=["x@y.z"])  # type: ignore[list-item]
        assert await app.schedules.list() == []
    finally:
        await app.close()


def test_blocking_twins_add_get_run_now_remove(store_url: str) -> None:
    app = make_app(store_url, 2525)
    try:
        made = app.schedules.add_sync("b", "s.report", cron="0 9 * * 1", tz="Europe/Berlin", args=["b"], notify=mail_for("b"))  # fmt: skip
        got = app.schedules.get_sync("b")
        assert got == made and got.spec.notify == made.spec.notify
        assert app.schedules.run_now_sync("b").options["notify"][0]["to"] == ["owner@b.example"]
        assert app.schedules.remove_sync("b")
        with pytest.raises(JobNotFound):
            app.schedules.get_sync("b")
    finally:
        app.close_sync()
