"""The SQLite listing queries read through their indexes (no sort of the whole queue),
and the per-state counts kept by triggers match the jobs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from corral import Corral
from corral.backends.base import KEEP_ALL, Completion, JobState
from corral.backends.sqlite import queries as q
from corral.backends.sqlite.migrations import MIGRATIONS, migrate


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


async def test_counts_kept_by_triggers_match_the_jobs(tmp_path: Path) -> None:
    path = tmp_path / "counts.db"
    app = Corral(f"sqlite:///{path}")

    @app.task(name="t.echo", queue="q")
    async def echo(n: int = 0) -> None: ...

    try:
        backend = await app.backend()
        await app.enqueue_many([echo.call(n) for n in range(6)])
        await echo.options(delay=60).enqueue(9)
        await echo.options(group="g").enqueue(7)
        claimed, _ = await backend.claim("q", 3, 30_000, "w1")
        await backend.complete("q", [Completion(claimed[0].id, claimed[0].token, b"1")], KEEP_ALL)
        await backend.fail("q", claimed[1].id, claimed[1].token, b'{"type":"E"}', 0, KEEP_ALL)
        await app.queue("q").retry_all()
        await app.queue("q").cancel_all()
        await app.queue("q").clean("cancelled", limit=2)

        def truth() -> dict[str, int]:
            with sqlite3.connect(path) as conn:
                rows = conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
                return {state.value: 0 for state in JobState} | dict(rows.fetchall())

        counts = await app.queue("q").counts()
        assert counts == truth() | {"paused": 0}
        assert counts["cancelled"] == 4 and counts["active"] == 1  # the claim left one
    finally:
        await app.close()


def test_the_migration_counts_the_jobs_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn)
    for n, state in enumerate(["waiting", "waiting", "failed"]):
        conn.execute(
            "INSERT INTO jobs (queue, id, name, data, state, priority, seq, created_at) "
            "VALUES ('q', ?, 't', '[[],{}]', ?, 0, ?, 0)",
            (f"j{n}", state, n),
        )
    # As a database of version 8, the one before the counters (9), would hold it: what
    # 9 and the later migrations (10: notifications, 11-14: flows) made is taken away again.
    conn.executescript(
        "DROP TRIGGER jobs_flow_prune; DROP INDEX jobs_by_flow;"
        " DROP TRIGGER jobs_flow_delete; DROP TRIGGER jobs_flow; DROP TABLE flow_settle; DROP TABLE flow_edges;"
        " DROP INDEX flows_newest; DROP TABLE flows; DROP INDEX jobs_blocked; ALTER TABLE jobs DROP COLUMN flow;"
        " DROP TRIGGER jobs_count_insert; DROP TRIGGER jobs_count_update;"
        " DROP TRIGGER jobs_count_delete; DROP TABLE state_counts;"
        " DROP TRIGGER jobs_outbox; DROP TABLE outbox; DROP TABLE endpoints;"
        " DROP TABLE counters; ALTER TABLE jobs DROP COLUMN notify;"
        " UPDATE corral_schema SET version = 8;"
    )
    assert len(MIGRATIONS) == 14, "a new migration: undo it above too"
    migrate(conn)
    rows = dict(conn.execute("SELECT state, n FROM state_counts WHERE queue = 'q'").fetchall())
    assert rows == {"waiting": 2, "failed": 1}
