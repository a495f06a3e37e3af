"""``corral job`` shows a job whose stored data cannot be decoded, flagged (both backends)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral import Corral
from tests.cli.run import corral
from tests.corrupt import write_raw


@pytest.fixture(params=["redis", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'c.db'}"


async def test_job_with_corrupt_arguments_is_shown_flagged(url: str) -> None:
    app = Corral(url)
    try:
        job = await app.enqueue("t.x", ["a"], {}, queue="q")
        await write_raw(await app.backend(), "q", job.id, "args", b"[not json")
    finally:
        await app.close()

    shown = corral("job", job.id, "--json", url=url)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["corrupt"], data["args"], data["state"]) == ({"args": "[not json"}, [], "waiting")

    human = corral("job", job.id, url=url)
    assert human.returncode == 0, human.stderr
    assert "args: not readable as stored: [not json" in human.stdout
    assert json.loads(corral("queues", "--json", url=url).stdout)["q"]["waiting"] == 1
