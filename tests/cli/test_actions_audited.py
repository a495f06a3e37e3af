"""CLI actions land in the audit log like the API's and the dashboard's, under
``cli:USER@HOST``; refused ones record nothing (both stores)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from corral import Corral
from corral.cli.commands import operator
from tests.cli.run import corral


@pytest.fixture
async def app(url: str) -> AsyncIterator[Corral]:
    app = Corral(url)
    yield app
    await app.close()


async def test_each_done_action_is_one_entry(app: Corral, url: str) -> None:
    await app.enqueue("t.x", queue="mail", job_id="j1")
    later = await app.enqueue("t.x", queue="mail", job_id="j2", delay=3600)
    await app.schedules.add("nightly", "t.x", cron="0 3 * * *", queue="mail")
    commands = [
        ["pause", "mail"],
        ["promote", "mail", later.id],
        ["promote", "mail", later.id],  # refused (now waiting): not recorded
        ["cancel", "j1", "-q", "mail"],
        ["bulk", "mail", "remove", "--state", "cancelled"],
        ["schedules", "pause", "nightly"],
    ]
    codes = [corral(*args, url=url).returncode for args in commands]
    assert codes == [0, 0, 2, 0, 0, 0]

    entries = list(reversed(await app.audit_entries()))
    assert {e.key for e in entries} == {operator()}
    assert operator().startswith("cli:") and "@" in operator()
    assert [(e.action, e.target, e.detail) for e in entries] == [
        ("queue.pause", "mail", None),
        ("job.promote", "mail/j2", None),
        ("job.cancel", "mail/j1", None),
        ("queue.bulk", "mail", {"action": "remove", "by": "filter", "matched": 1, "changed": 1}),
        ("schedule.pause", "nightly", None),
    ]
