"""``corral history [QUEUE]``: the overview charts' numbers from a shell (both stores)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator

import pytest

from corral import Corral
from corral.backends.base import Completion, Retention
from corral.cli.history import sparkline
from tests.cli.run import corral


@pytest.fixture
async def app(url: str) -> AsyncIterator[Corral]:
    app = Corral(url)
    yield app
    await app.close()


async def _outcomes(app: Corral, completed: int, failed: int) -> None:
    """Jobs of queue 'mail' completed and failed for good now, as a worker ends them."""
    for i in range(completed + failed):
        await app.enqueue("t.x", [i], queue="mail")
    backend = await app.backend()
    claimed, _ = await backend.claim("mail", completed + failed, 30_000, "w1")
    done = [Completion(job.id, job.token, b"1") for job in claimed[:completed]]
    assert await backend.complete("mail", done, Retention()) == [True] * completed
    error = b'{"type": "E", "message": "no", "attempt": 1}'
    for job in claimed[completed:]:
        assert await backend.fail("mail", job.id, job.token, error, None, Retention())


async def test_totals_and_the_last_minute(app: Corral, url: str) -> None:
    recorded_in = time.time() // 60
    await _outcomes(app, completed=3, failed=1)
    out = corral("history", "mail", "--json", url=url)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data == (await app.history("mail")).to_dict()
    assert (data["totals"]["completed"], data["totals"]["failed"]) == (3, 1)

    terminal = {"COLUMNS": "80", "TTY_COMPATIBLE": "1"}
    human = re.sub(r"\x1b\[[0-9;]*m", "", corral("history", url=url, env=terminal).stdout)
    lines = human.splitlines()
    assert lines[0].startswith("every queue, the last hour, a point a minute (from ")
    assert all(len(line) <= 80 for line in lines), lines
    completed = re.fullmatch(r"  completed +3  (\S{60})", lines[1])
    failed = re.fullmatch(r"  failed +1  (\S{60})", lines[2])
    assert completed and failed, lines  # 60 points, one a character, at 80 columns
    # The outcomes are the last minute's point, or the one before it when a minute
    # began while the CLI ran (a slow machine); every other point is empty.
    points = completed[1] if time.time() // 60 == recorded_in else completed[1].rstrip("·")
    assert points.endswith("█") and set(points[:-2]) == {"·"}, completed[1]


def test_sparkline_scales_and_merges() -> None:
    assert sparkline([0, 1, 2, 4, 8], 10) == "·▁▂▄█"
    assert sparkline([1, 1, 0, 0, 4, 4], 3) == "▂·█"  # pairs added to fit 3 characters
    assert sparkline([0, 0], 5) == "··"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["history", "nope"], "error: no queue 'nope'"),
        (["history", "--span", "week"], "'week' is not one of 'hour', 'day'"),
    ],
)
async def test_bad_input_is_a_usage_error(
    app: Corral, url: str, args: list[str], needle: str
) -> None:
    await app.enqueue("t.x", queue="mail")
    out = corral(*args, url=url)
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr and "Traceback" not in out.stderr
