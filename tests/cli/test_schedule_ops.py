"""``corral schedules run|pause|resume NAME`` run as a user would, on both stores."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest

from corral import Corral, JobState
from tests.cli.run import corral


@pytest.fixture
async def app(url: str) -> AsyncIterator[Corral]:
    app = Corral(url)
    await app.schedules.add("nightly", "reports.build", cron="0 3 * * *", args=["acme"], queue="reports")  # fmt: skip
    yield app
    await app.close()


async def test_run_enqueues_now_and_keeps_the_schedule(app: Corral, url: str) -> None:
    before = await app.schedules.get("nightly")
    out = corral("schedules", "run", "nightly", "--json", url=url)
    assert out.returncode == 0, out.stderr
    job = json.loads(out.stdout)
    assert job["id"].startswith("nightly@now-")
    assert (job["queue"], job["name"], job["args"]) == ("reports", "reports.build", ["acme"])
    assert (await app.get_job(job["id"], "reports")).state is JobState.WAITING
    assert await app.schedules.get("nightly") == before

    human = corral("schedules", "run", "nightly", url=url)
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith("schedule nightly: enqueued job nightly@now-")
    assert (await app.queue("reports").counts())["waiting"] == 2


async def test_pause_shows_in_the_listing_then_resume(app: Corral, url: str) -> None:
    out = corral("schedules", "pause", "nightly", url=url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "schedule nightly: paused (it fires again once resumed)"
    listed = json.loads(corral("schedules", "--json", url=url).stdout)
    assert [(s["name"], s["paused"], s["next_run_at"]) for s in listed] == [("nightly", True, None)]
    table = corral("schedules", url=url, env={"COLUMNS": "200"}).stdout
    assert [row.split()[-1] for row in table.splitlines() if "nightly" in row] == ["yes"]

    back = corral("schedules", "resume", "nightly", "--json", url=url)
    assert back.returncode == 0, back.stderr
    shown = json.loads(back.stdout)
    assert shown["paused"] is False and shown["next_run_at"].endswith("03:00:00+00:00")
    assert not (await app.schedules.get("nightly")).spec.paused


@pytest.mark.parametrize("action", ["run", "pause", "resume"])
async def test_an_unknown_schedule_is_a_usage_error(app: Corral, url: str, action: str) -> None:
    out = corral("schedules", action, "nightly-typo", url=url)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: no schedule named 'nightly-typo' (schedules: nightly)"
    schedule = await app.schedules.get("nightly")
    assert not schedule.spec.paused and schedule.next_run_at is not None  # untouched
    assert (await app.queue("reports").counts())["waiting"] == 0


def test_help_of_each_action() -> None:
    for action in ("run", "pause", "resume"):
        out = corral("schedules", action, "--help")
        assert out.returncode == 0
        assert "NAME" in out.stdout and "--url" in out.stdout
    assert corral("schedules", "stop", "x").returncode == 2


async def test_the_listing_fits_80_columns_with_names_whole(app: Corral, url: str) -> None:
    name = "nightly-customer-export-to-the-warehouse"
    await app.schedules.add(name, "exports.customers.to_warehouse_full", cron="30 2 * * 1-5", tz="America/Argentina/Buenos_Aires", queue="exports")  # fmt: skip
    out = corral("schedules", url=url, env={"COLUMNS": "80", "TTY_COMPATIBLE": "1"})
    assert out.returncode == 0, out.stderr
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout).splitlines()
    assert len(lines) == 3 and all(len(line) <= 80 for line in lines), lines
    assert [line.split()[0] for line in lines] == ["schedule", "nightly", name]
