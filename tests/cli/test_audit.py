"""``corral audit`` run as a user would, on both stores."""

from __future__ import annotations

import json
import re

from corral import Corral
from tests.cli.run import corral


async def _recorded(url: str) -> list[str]:
    app = Corral(url)
    try:
        return [
            await app.record_audit("ops", "queue.pause", "emails", {"reason": "[smtp] down"}),
            await app.record_audit(
                "ci", "job.retry", "emails/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
            ),
            await app.record_audit("ci", "job.cancel", "emails/j2"),
        ]
    finally:
        await app.close()


async def test_json_lists_the_newest_first_and_pages(url: str) -> None:
    ids = await _recorded(url)
    out = corral("audit", "--json", "--limit", "2", url=url)
    assert out.returncode == 0, out.stderr
    page = json.loads(out.stdout)
    assert [(e["id"], e["key"], e["action"]) for e in page] == [
        (ids[2], "ci", "job.cancel"),
        (ids[1], "ci", "job.retry"),
    ]
    older = json.loads(corral("audit", "--json", "--before", ids[1], url=url).stdout)
    assert [(e["id"], e["detail"]) for e in older] == [(ids[0], {"reason": "[smtp] down"})]


async def test_the_table_fits_80_columns_and_shows_every_field(url: str) -> None:
    ids = await _recorded(url)
    terminal = {"TTY_COMPATIBLE": "1", "COLUMNS": "80", "NO_COLOR": "1"}
    out = corral("audit", "-n", "3", url=url, env=terminal)
    assert out.returncode == 0, out.stderr
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout)  # bold headers
    lines = plain.splitlines()
    assert max(len(line) for line in lines) <= 80
    # Folded cells read whole across their lines (the other columns are blank there).
    flat = re.sub(r"[│┃\s]", "", plain)
    for shown in ("when(UTC)", "queue.pause", '{"reason":"[smtp]down"}', "ops", "job.cancel"):
        assert shown in flat
    assert "emails/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" in flat
    assert lines[-1] == f"older: corral audit --before {ids[0]}"


async def test_empty_log_and_bad_before(url: str) -> None:
    out = corral("audit", url=url)
    assert out.returncode == 0 and out.stdout.strip() == "no audit entries", out.stderr
    bad = corral("audit", "--before", "not-an-id", url=url)
    assert bad.returncode == 2
    assert "before: 'not-an-id' is not an audit entry id" in bad.stderr
    assert "Traceback" not in bad.stderr
    limit = corral("audit", "--limit", "0", url=url)
    assert limit.returncode == 2 and "--limit" in limit.stderr
