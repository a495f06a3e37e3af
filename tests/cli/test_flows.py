"""``corral flow show|list|cancel|retry-failed`` run as a user would, on both stores."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from corral import Corral, Dep, Flow
from corral.backends.base import KEEP_ALL, Completion
from tests.cli.run import corral


@pytest.fixture
async def app(url: str) -> AsyncIterator[Corral]:
    app = Corral(url)
    yield app
    await app.close()


async def _start(app: Corral, flow_id: str) -> None:
    """fetch -> parse, and report after both (skipped if parse does not complete)."""
    flow = Flow()
    fetch = flow.add(app.call("t.fetch", [7], queue="etl"), name="fetch")
    parse = flow.add(app.call("t.parse", queue="etl"), name="parse", after=[fetch])
    flow.add(
        app.call("t.report", queue="etl"),
        name="report",
        after=[fetch, Dep(parse, on_failure="skip")],
    )
    await app.start_flow(flow, flow_id=flow_id)


async def _finish_one(app: Corral, ok: bool) -> str:
    """Claim one job of ``etl`` and complete (or fail) it as a worker would."""
    backend = await app.backend()
    claimed, _ = await backend.claim("etl", 1, 30_000, "w1")
    job = claimed[0]
    if ok:
        assert await backend.complete("etl", [Completion(job.id, job.token, b"1")], KEEP_ALL)
    else:
        error = b'{"type":"ValueError","message":"bad row 7","attempt":1}'
        assert await backend.fail("etl", job.id, job.token, error, None, KEEP_ALL)
    return job.id


async def test_show_a_flow_with_its_jobs_and_edges(app: Corral, url: str) -> None:
    await _start(app, "etl-1")
    out = corral("flow", "show", "etl-1", url=url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("flow etl-1  running  0 of 3 jobs ended  created 20")
    table = "\n".join(lines[1:])
    assert "fetch" in table and "waiting" in table and "blocked" in table
    assert any(line.split()[:3] == ["report", "parse", "skip"] for line in lines), lines
    as_json = corral("flow", "show", "etl-1", "--json", url=url)
    data = json.loads(as_json.stdout)
    assert data["state"] == "running"
    assert {j["name"]: j["state"] for j in data["jobs"]} == {
        "fetch": "waiting",
        "parse": "blocked",
        "report": "blocked",
    }
    assert {(e["from"], e["to"], e["on_failure"]) for e in data["edges"]} == {
        ("fetch", "parse", "fail"),
        ("fetch", "report", "fail"),
        ("parse", "report", "skip"),
    }


async def test_unknown_flows_are_named_with_exit_3(url: str) -> None:
    for command in ("show", "cancel", "retry-failed"):
        out = corral("flow", command, "nope", url=url)
        assert out.returncode == 3, (command, out.stdout, out.stderr)
        assert out.stderr.strip() == "error: no flow 'nope'"
        assert "Traceback" not in out.stderr


async def test_cancel_then_retry_the_failed_jobs(app: Corral, url: str) -> None:
    await _start(app, "etl-2")
    out = corral("flow", "cancel", "etl-2", url=url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "flow etl-2: cancelled 3 jobs; now cancelled"
    again = corral("flow", "retry-failed", "etl-2", "--json", url=url)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["retried"] == 3 and data["state"] == "running"
    busy = corral("flow", "retry-failed", "etl-2", url=url)
    assert busy.returncode == 1
    assert "still running" in busy.stderr and "Traceback" not in busy.stderr
    actions = [e.action for e in await app.audit_entries()]
    assert actions.count("flow.cancel") == 1 and actions.count("flow.retry") == 1


async def test_a_failed_job_and_its_skipped_dependent_are_retried(app: Corral, url: str) -> None:
    await _start(app, "etl-3")
    await _finish_one(app, ok=True)  # fetch
    await _finish_one(app, ok=False)  # parse fails: report is skipped
    shown = json.loads(corral("flow", "show", "etl-3", "--json", url=url).stdout)
    assert shown["state"] == "failed"
    assert {j["name"]: j["state"] for j in shown["jobs"]} == {
        "fetch": "completed",
        "parse": "failed",
        "report": "cancelled",
    }
    out = corral("flow", "retry-failed", "etl-3", url=url)
    assert out.stdout.strip() == "flow etl-3: retried 2 jobs; now running"


async def test_list_newest_first_in_pages(app: Corral, url: str) -> None:
    empty = corral("flow", "list", url=url)
    assert empty.returncode == 0 and empty.stdout.strip() == "no flows yet"
    for n in range(3):
        await _start(app, f"etl-{n}")
    out = corral("flow", "list", "-n", "2", url=url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["flow", "state", "ended", "jobs", "created"]
    assert [line.split()[:4] for line in lines[1:3]] == [
        ["etl-2", "running", "0/3", "3"],
        ["etl-1", "running", "0/3", "3"],
    ]
    assert lines[3].startswith("older: corral flow list --cursor ")
    cursor = lines[3].split()[-1]
    rest = json.loads(corral("flow", "list", "--cursor", cursor, "--json", url=url).stdout)
    assert [f["id"] for f in rest["flows"]] == ["etl-0"] and rest["next_cursor"] is None
    bad = corral("flow", "list", "--cursor", "garbage", url=url)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: cursor 'garbage' is not one a flow listing gave"
