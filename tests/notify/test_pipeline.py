"""Notifications end to end inside Corral: a job's outcome goes through the outbox,
the relay and a delivery job to its targets, on both backends (issue 17 §1).

The target here is a small in-process one that records what it is given (and can be
told to fail): these tests are about the pipeline; the webhook and email targets
are tested against real receivers in their own files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import pytest

from corral import Corral
from corral.errors import ConfigurationError
from corral.notify.base import DeliveryError, Notice, NotifySettings, Target
from corral.notify.registry import DELIVER_TASK, NOTIFY_QUEUE
from corral.notify.relay import Relay
from tests.worker.conftest import Workers


class Recorder(Target):
    kind: ClassVar[str] = "recorder"

    def __init__(self, name: str, events: tuple[str, ...] = ("completed", "failed")) -> None:
        self.name = name
        self.events = frozenset(events)
        self.got: list[Notice] = []
        self.failures: list[DeliveryError] = []  # raised in turn, first to last

    @property
    def key(self) -> str:
        return f"recorder:{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recorder:
        return cls(data["name"])

    async def deliver(self, notice: Notice, settings: NotifySettings) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.got.append(notice)


FAST = NotifySettings(retries=(0.05, 0.05))


@pytest.fixture
async def app(store_url: str) -> AsyncIterator[Corral]:
    app = Corral(store_url, notifications=FAST)
    try:
        yield app
    finally:
        await app.close()


async def one_job(app: Corral, workers: Workers, target: Target) -> Any:
    """A task notifying ``target``, one job of it enqueued, and a worker started."""

    @app.task(name="t.ok", notify=target)
    async def ok() -> int:
        return 1

    await ok.enqueue()
    workers.start(["default"])
    return ok


async def until(check: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_a_completed_job_is_delivered_once_to_each_target(
    app: Corral, workers: Workers
) -> None:
    everyone, reports = Recorder("everyone"), Recorder("reports", ("completed",))
    app.notify(everyone)

    @app.task(name="reports.send", notify=[reports])
    async def send(rows: int) -> dict[str, int]:
        return {"rows": rows}

    job = await send.enqueue(5962)
    workers.start(["default"])
    await until(lambda: everyone.got and reports.got)
    await asyncio.sleep(0.3)  # a second relay round must add nothing
    assert len(everyone.got) == len(reports.got) == 1
    notice = everyone.got[0]
    assert (notice.job_id, notice.event, notice.task, notice.queue, notice.attempt) == (
        job.id,
        "completed",
        "reports.send",
        "default",
        1,
    )
    assert notice.result == {"rows": 5962}
    assert notice.id == reports.got[0].id and notice.id.startswith("msg_")
    await until_async(lambda: app.queue(NOTIFY_QUEUE).jobs("completed"), 2)
    deliveries = await app.queue(NOTIFY_QUEUE).jobs("completed")
    assert sorted(d.id for d in deliveries) == sorted(
        f"{notice.id}.recorder:{name}" for name in ("everyone", "reports")
    )
    assert {d.name for d in deliveries} == {DELIVER_TASK}


async def test_a_failure_is_delivered_after_retries_with_the_same_id(
    app: Corral, workers: Workers
) -> None:
    target = Recorder("ops", ("failed",))
    target.failures = [DeliveryError("503 from receiver"), DeliveryError("timed out")]

    @app.task(name="imports.csv", attempts=1, notify=target)
    async def imports() -> None:
        raise ValueError("bad row 7")

    await imports.enqueue()
    workers.start(["default"])
    await until(lambda: target.got)
    [notice] = target.got
    assert notice.event == "failed"
    assert notice.error is not None and notice.error["message"] == "bad row 7"
    assert notice.error_message == "ValueError: bad row 7"
    # The target has it; the delivery's completion is recorded a moment later.
    await until_async(lambda: app.queue(NOTIFY_QUEUE).jobs("completed"), 1)
    [delivery] = await app.queue(NOTIFY_QUEUE).jobs("completed")
    record = await delivery.refresh()
    assert record.attempts == 3
    assert [e["message"] for e in record.errors] == ["503 from receiver", "timed out"]


async def test_an_undeliverable_notice_is_dead_lettered_and_visible(
    app: Corral, workers: Workers
) -> None:
    target = Recorder("crm")
    target.failures = [DeliveryError("550 mailbox unknown", retry=False)]

    await one_job(app, workers, target)
    notify = app.queue(NOTIFY_QUEUE)

    async def dead() -> list[Any]:
        return await notify.jobs("failed")

    async with asyncio.timeout(10):
        while not (failed := await dead()):
            await asyncio.sleep(0.02)
    record = await failed[0].refresh()
    assert record.attempts == 1 and record.errors[-1]["message"] == "550 mailbox unknown"
    assert target.got == []
    states = await app.notify_endpoints()
    assert [(s.key, s.failing, s.reason) for s in states] == [
        ("recorder:crm", True, "550 mailbox unknown")
    ]


async def test_a_gone_endpoint_is_disabled_until_enabled_again(
    app: Corral, workers: Workers
) -> None:
    target = Recorder("hook")
    target.failures = [DeliveryError("answered 410 Gone", gone=True)]

    ok = await one_job(app, workers, target)
    notify = app.queue(NOTIFY_QUEUE)
    await until_async(lambda: notify.jobs("failed"), 1)
    [state] = await app.notify_endpoints()
    assert state.disabled and "410" in state.reason
    await ok.enqueue()  # refused at once: the endpoint is disabled
    await until_async(lambda: notify.jobs("failed"), 2)
    second = [await j.refresh() for j in await notify.jobs("failed")]
    assert any("is disabled" in r.errors[-1]["message"] for r in second)
    assert target.got == []
    assert await app.enable_notify_endpoint("recorder:hook")
    await ok.enqueue()
    await until(lambda: target.got)


async def until_async(read: Any, count: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while len(await read()) < count:
            await asyncio.sleep(0.02)


async def test_jobs_without_targets_or_outcomes_not_wanted_send_nothing(
    app: Corral, workers: Workers
) -> None:
    only_failures = Recorder("x", ("failed",))

    @app.task(name="t.plain")
    async def plain() -> int:
        return 1

    @app.task(name="t.watched", notify=only_failures)
    async def watched() -> int:
        return 2

    await plain.enqueue()
    await watched.enqueue()
    workers.start(["default"])
    await until_async(lambda: app.queue("default").jobs("completed"), 2)
    await asyncio.sleep(0.5)  # two relay rounds
    assert await app.queue(NOTIFY_QUEUE).jobs("waiting") == []
    assert await app.queue(NOTIFY_QUEUE).jobs("completed") == []
    assert only_failures.got == []


async def test_bad_notify_arguments_are_refused_clearly(store_url: str) -> None:
    plain = Corral(store_url)
    try:

        @plain.task(name="t.x")
        async def x() -> None:
            return None

        with pytest.raises(ConfigurationError, match="notifications are not set up"):
            x.options(notify=Recorder("a"))
        with pytest.raises(ConfigurationError, match="not a notification target"):
            plain.notify("https://example.com")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="must be a list"):
            plain.task(name="t.y", notify="https://example.com")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="NotifySettings"):
            Corral(store_url, notifications={"allow": []})  # type: ignore[arg-type]
    finally:
        await plain.close()


def test_the_relay_holds_taken_entries_for_corral_outbox_hold_ms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the hold does (a dead relay's entries are taken again after it) is shown
    # by the chaos scenario notify_kill, which runs with a 2 s hold.
    monkeypatch.setenv("CORRAL_OUTBOX_HOLD_MS", "1500")
    app = Corral("sqlite:///:memory:", notifications=FAST)
    [relay] = [each for each in app.listeners if isinstance(each, Relay)]
    assert relay.hold_ms == 1500
    monkeypatch.setenv("CORRAL_OUTBOX_HOLD_MS", "soon")
    with pytest.raises(ConfigurationError, match="CORRAL_OUTBOX_HOLD_MS must be a whole number"):
        Corral("sqlite:///:memory:", notifications=FAST)
