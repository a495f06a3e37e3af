"""``corral jobs QUEUE``: pages, filters, the 80-column table and bad input, run as a
user would on both stores."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from corral import Corral
from corral.backends.base import Retention
from tests.cli.run import corral

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
async def app(url: str) -> AsyncIterator[Corral]:
    app = Corral(url)
    yield app
    await app.close()


def listed(url: str, *args: str) -> dict[str, Any]:
    out = corral("jobs", *args, "--json", url=url)
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


async def test_pages_follow_the_cursor_to_the_end(app: Corral, url: str) -> None:
    made = [(await app.enqueue("t.x", [i], queue="mail")).id for i in range(5)]
    seen: list[str] = []
    cursor: list[str] = []
    while True:
        page = listed(url, "mail", "--limit", "2", *cursor)
        assert len(page["jobs"]) <= 2 and "scanned" not in page
        seen += [job["id"] for job in page["jobs"]]
        if page["next_cursor"] is None:
            break
        cursor = ["--cursor", page["next_cursor"]]
    assert seen == made  # waiting jobs in the order they will run, each once


async def test_filters_search_a_bounded_scan(app: Corral, url: str) -> None:
    await app.enqueue("emails.send", ["ann@example.com"], queue="mail")
    await app.enqueue("emails.bulk", [["bob@example.com"]], queue="mail")
    report = await app.enqueue("reports.build", ["acme"], queue="mail")

    found = listed(url, "mail", "--task", "emails.*")
    assert [j["name"] for j in found["jobs"]] == ["emails.send", "emails.bulk"]
    assert (found["scanned"], found["bound"], found["exhausted"]) == (3, 5000, True)
    assert [j["id"] for j in listed(url, "mail", "--search", "ACME")["jobs"]] == [report.id]
    assert listed(url, "mail", "--search", "acme", "--task", "emails.*")["jobs"] == []


async def test_a_search_goes_on_from_its_cursor(app: Corral, url: str) -> None:
    await app.enqueue("emails.send", ["ann@example.com"], queue="mail")
    report = await app.enqueue("reports.build", ["acme"], queue="mail")
    # --scan 1: one job read per call; the search goes on from the cursor it gives.
    first = listed(url, "mail", "--task", "reports.build", "--scan", "1")
    assert (first["jobs"], first["scanned"], first["exhausted"]) == ([], 1, False)
    hits, cursor = [], first["next_cursor"]
    while cursor:
        step = listed(url, "mail", "--task", "reports.build", "--scan", "1", "--cursor", cursor)
        hits += [j["id"] for j in step["jobs"]]
        cursor = step["next_cursor"]
    assert hits == [report.id]


async def test_failed_jobs_by_error_text(app: Corral, url: str) -> None:
    backend = await app.backend()
    for i, message in enumerate(["smtp timeout", "bad address"]):
        await app.enqueue("emails.send", [i], queue="mail", job_id=f"e{i}")
        [claimed], _ = await backend.claim("mail", 1, 30_000, "w1")
        error = json.dumps({"type": "SendError", "message": message, "attempt": 1}).encode()
        assert await backend.fail("mail", claimed.id, claimed.token, error, None, Retention())
    found = listed(url, "mail", "--state", "failed", "--error", "TIMEOUT")
    assert [j["id"] for j in found["jobs"]] == ["e0"]

    table = corral("jobs", "mail", "--state", "failed", url=url).stdout
    assert re.search(r"^e1 +emails\.send +\S+ +1 +SendError: bad address *$", table, re.M), table


async def test_the_table_fits_80_columns(app: Corral, url: str) -> None:
    long_args = ["x" * 300]
    jobs = [await app.enqueue("imports.customers.from_csv_upload", long_args, queue="mail", priority=5) for _ in range(3)]  # fmt: skip
    terminal = {"COLUMNS": "80", "TTY_COMPATIBLE": "1"}
    out = corral("jobs", "mail", "--limit", "2", url=url, env=terminal)
    assert out.returncode == 0, out.stderr
    lines = ANSI.sub("", out.stdout).splitlines()
    table, footer = lines[:-1], lines[-1]
    assert len(table) == 3 and all(len(line) <= 80 for line in table), lines
    assert table[0].split() == ["id", "task", "when", "try", "detail"]
    assert [line.split()[0] for line in table[1:]] == [j.id for j in jobs[:2]]  # ids whole
    assert re.search(r" imports\.cust\S*… ", table[1]), table  # the task cut, not wrapped
    assert re.fullmatch(r"next page: --cursor \S+ \(same options\)", footer)

    piped = corral("jobs", "mail", "--state", "waiting", "--limit", "1", url=url)
    assert "imports.customers.from_csv_upload" in piped.stdout  # not a terminal: nothing cut
    assert "priority 5" in piped.stdout


async def test_empty_state_and_exhausted_search_say_so(app: Corral, url: str) -> None:
    await app.enqueue("t.x", queue="mail")
    empty = corral("jobs", "mail", "--state", "failed", url=url)
    assert empty.stdout.strip() == "no failed jobs in queue mail (1 waiting: --state picks)"
    none = corral("jobs", "mail", "--task", "nope.*", url=url)
    assert none.stdout.strip() == "no matches among the 1 waiting jobs scanned"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nope"], "error: no queue 'nope' (queues: mail)"),
        (["mail", "--state", "running"], "'running' is not one of"),
        (["mail", "--cursor", "zzz"], "error: cursor is not one this queue handed out"),
        (["mail", "--limit", "0"], "--limit"),
        (["mail", "--limit", "1001"], "--limit"),
        (["mail", "--scan", "many"], "--scan"),
        (["mail", "--task", ""], "error: task must be text of 1-200 characters"),
        (["mail", "--search", "x" * 201], "error: text must be text of 1-200 characters"),
    ],
)
async def test_bad_input_is_a_usage_error(
    app: Corral, url: str, args: list[str], needle: str
) -> None:
    await app.enqueue("t.x", queue="mail")
    out = corral("jobs", *args, url=url)
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr
    assert "Traceback" not in out.stderr


async def test_a_cursor_of_another_state_is_refused(app: Corral, url: str) -> None:
    for i in range(2):
        await app.enqueue("t.x", [i], queue="mail")
    cursor = listed(url, "mail", "--limit", "1")["next_cursor"]
    out = corral("jobs", "mail", "--state", "delayed", "--cursor", cursor, url=url)
    assert out.returncode == 2
    assert "cursor" in out.stderr and "Traceback" not in out.stderr


def test_help() -> None:
    out = corral("jobs", "--help")
    assert out.returncode == 0
    for option in ("--state", "--task", "--search", "--limit", "--cursor", "--json"):
        assert option in out.stdout
