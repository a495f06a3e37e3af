"""The SQLite listing queries read through their indexes (no sort of the whole queue)."""

from __future__ import annotations

import sqlite3

import pytest

from corral.backends.sqlite import queries as q
from corral.backends.sqlite.migrations import migrate


@pytest.mark.parametrize("state", ["completed", "failed", "cancelled"])
def test_finished_pages_use_the_finished_index(state: str) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    for sql, args in (
        (q.PAGE_FIRST["finished"], ("q", 50)),
        (q.PAGE_AFTER["finished"], ("q", 1, "id", 50)),
    ):
        plan = " ".join(
            str(row[-1])
            for row in conn.execute("EXPLAIN QUERY PLAN " + sql.format(state=state), args)
        )
        assert "INDEX jobs_finished" in plan and "TEMP B-TREE" not in plan, plan
