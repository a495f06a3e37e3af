"""``corral job ID``: why a job has not started (the dashboard's "why not started"), and
stored text shown as text (both stores)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from corral import Corral
from corral.backends.base import Retention
from tests.cli.run import corral


@pytest.fixture
async def app(url: str) -> AsyncIterator[Corral]:
    app = Corral(url)
    yield app
    await app.close()


async def test_why_a_job_has_not_started(app: Corral, url: str) -> None:
    later = await app.enqueue("t.x", queue="mail", delay=3600)
    await app.queue("mail").pause()
    out = corral("job", later.id, "--json", url=url)
    assert out.returncode == 0, out.stderr
    kinds = [b["kind"] for b in json.loads(out.stdout)["blockers"]]
    assert kinds == [b.kind for b in await later.blockers()]
    assert kinds[:3] == ["delayed", "paused", "no_worker"]

    human = corral("job", later.id, url=url).stdout
    lines = [line.strip() for line in human.splitlines() if "not started:" in line]
    assert lines[0].startswith("not started: it is delayed until")
    assert len(lines) == len(kinds)


async def test_a_finished_job_has_no_blockers_and_its_error_is_text(app: Corral, url: str) -> None:
    await app.enqueue("t.x", queue="mail", job_id="f1")
    backend = await app.backend()
    [claimed], _ = await backend.claim("mail", 1, 30_000, "w1")
    message = "bad [/x] tag and [bold]not bold[/bold]"
    error = json.dumps({"type": "ValueError", "message": message, "attempt": 1}).encode()
    assert await backend.fail("mail", "f1", claimed.token, error, None, Retention())

    assert json.loads(corral("job", "f1", "--json", url=url).stdout)["blockers"] == []
    human = corral("job", "f1", url=url)
    assert human.returncode == 0, human.stderr
    assert f"error (attempt 1): ValueError: {message}" in human.stdout
    assert "not started" not in human.stdout
