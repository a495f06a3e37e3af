"""The SQLite listing queries read through their indexes (no sort of the whole queue),
and the per-state counts kept by triggers match the jobs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from corral import Corral
from corral.backends.base import KEEP_ALL, Completion, JobState, Retention
from corral.backends.sqlite import migrations
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


def _migrate_to(conn: sqlite3.Connection, version: int) -> None:
    """Bring ``conn`` to schema ``version`` exactly, as that Corral left its databases."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:version])
        migrate(conn)


def test_the_migration_counts_the_jobs_already_stored(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    _migrate_to(conn, 8)  # the version before the counters (9)
    for n, state in enumerate(["waiting", "waiting", "failed"]):
        conn.execute(
            "INSERT INTO jobs (queue, id, name, data, state, priority, seq, created_at) "
            "VALUES ('q', ?, 't', '[[],{}]', ?, 0, ?, 0)",
            (f"j{n}", state, n),
        )
    migrate(conn)
    rows = dict(conn.execute("SELECT state, n FROM state_counts WHERE queue = 'q'").fetchall())
    assert rows == {"waiting": 2, "failed": 1}


# -- migration 15: the jobs table's triggers merged, one per event ---------------------

_DERIVED = [
    "SELECT queue, state, n FROM state_counts WHERE n != 0 ORDER BY 1, 2",
    "SELECT queue, grp, waiting, active, turn FROM groups ORDER BY 1, 2",
    "SELECT name, turn FROM queues ORDER BY 1",
    "SELECT queue, job_id, event, task, attempt, result, error FROM outbox ORDER BY id",
    "SELECT queue, job_id, state FROM flow_settle ORDER BY id",
    "SELECT queue, key, job_id FROM dedupe ORDER BY 1, 2",
    "SELECT dep_queue, dep_id, name FROM flow_edges ORDER BY 1, 2, 3",
    "SELECT id FROM flows ORDER BY 1",
]


def _exercise(conn: sqlite3.Connection) -> list[list[list[tuple[object, ...]]]]:
    """Every kind of row the triggers look at, moved through every kind of change:
    grouped and not, notified or not, in a flow or not, with a dedupe key or not.
    Returns the derived tables after the inserts, the moves and the deletes."""
    snapshots = []
    conn.execute("INSERT INTO queues (name) VALUES ('q'), ('r')")
    conn.execute("INSERT INTO flows (id, created_at, spec) VALUES ('f1', 0, x'')")
    jobs = [
        # id, queue, state, grp, notify, flow, dedupe
        ("a", "q", "waiting", None, None, None, None),
        ("b", "q", "waiting", "g1", None, None, None),
        ("c", "q", "waiting", "g1", "completed,failed", None, "k1"),
        ("d", "q", "delayed", "g2", "failed", "f1", None),
        ("e", "r", "blocked", None, "cancelled", "f1", "k2"),
        ("f", "r", "waiting", None, None, "f1", None),
        ("g", "q", "active", "g2", None, None, None),
        ("h", "q", "waiting", "g3", None, None, None),
    ]
    for n, (job_id, queue, state, grp, notify, flow, dedupe) in enumerate(jobs):
        conn.execute(
            "INSERT INTO jobs (queue, id, name, data, state, priority, seq, created_at, grp,"
            " notify, flow, dedupe) VALUES (?, ?, 't', x'', ?, 0, ?, 0, ?, ?, ?, ?)",
            (queue, job_id, state, n, grp, notify, flow, dedupe),
        )
        if dedupe:
            conn.execute("INSERT INTO dedupe VALUES (?, ?, ?, NULL)", (queue, dedupe, job_id))
    conn.execute(
        "INSERT INTO flow_edges (dep_queue, dep_id, name, queue, job_id, policy, pass_result)"
        " VALUES ('r', 'e', 'x', 'q', 'd', 'cancel', 0), ('q', 'd', 'y', 'r', 'f', 'cancel', 0)"
    )
    conn.execute("INSERT INTO job_errors VALUES ('q', 'd', x'01'), ('q', 'd', x'02')")
    snapshots.append([conn.execute(sql).fetchall() for sql in _DERIVED])
    moves = [
        ("a", "q", "active"),
        ("b", "q", "active"),
        ("c", "q", "active"),
        ("c", "q", "completed"),
        ("b", "q", "waiting"),
        ("b", "q", "waiting"),  # no change: no trigger work
        ("d", "q", "waiting"),
        ("d", "q", "active"),
        ("d", "q", "failed"),
        ("e", "r", "waiting"),
        ("e", "r", "cancelled"),
        ("g", "q", "completed"),
        ("a", "q", "completed"),
    ]
    for job_id, queue, state in moves:
        conn.execute(
            "UPDATE jobs SET state = ?, result = x'2a', finished_at = 5 WHERE queue = ? AND id = ?",
            (state, queue, job_id),
        )
    snapshots.append([conn.execute(sql).fetchall() for sql in _DERIVED])
    for queue, job_id in [("q", "b"), ("r", "f"), ("q", "c"), ("q", "d"), ("r", "e")]:
        conn.execute("DELETE FROM jobs WHERE queue = ? AND id = ?", (queue, job_id))
    snapshots.append([conn.execute(sql).fetchall() for sql in _DERIVED])
    return snapshots


def test_merged_triggers_do_what_the_separate_ones_did() -> None:
    old = sqlite3.connect(":memory:", isolation_level=None)
    _migrate_to(old, 14)
    new = sqlite3.connect(":memory:", isolation_level=None)
    migrate(new)
    triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'jobs'"
    assert len(old.execute(triggers).fetchall()) == 11
    assert sorted(r[0] for r in new.execute(triggers)) == [
        "jobs_added",
        "jobs_deleted",
        "jobs_moved",
    ]
    expected = _exercise(old)
    assert all(expected[1]), "after the moves, every derived table must hold something"
    assert _exercise(new) == expected


async def test_a_database_of_version_14_upgrades_with_exact_counts(tmp_path: Path) -> None:
    path = tmp_path / "v14.db"
    conn = sqlite3.connect(path, isolation_level=None)
    _migrate_to(conn, 14)
    conn.close()
    app = Corral(f"sqlite:///{path}")  # the older Corral's jobs, then this one's

    @app.task(name="t.echo", queue="q")
    async def echo(n: int = 0) -> None: ...

    try:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("INSERT INTO queues (name, seq) VALUES ('q', 10)")
        for n in range(3):
            conn.execute(
                "INSERT INTO jobs (queue, id, name, data, state, priority, seq, created_at, grp)"
                " VALUES ('q', ?, 't.echo', '[[],{}]', 'waiting', 0, ?, 0, ?)",
                (f"old{n}", n, "g" if n else None),
            )
        conn.close()
        backend = await app.backend()  # migrates to the current version
        await app.enqueue_many([echo.call(n) for n in range(4)])
        claimed, _ = await backend.claim("q", 5, 30_000, "w1")
        done = [Completion(job.id, job.token, b"1") for job in claimed[:3]]
        assert await backend.complete("q", done, Retention(count=1)) == [True] * 3
        counts = await app.queue("q").counts()
        with sqlite3.connect(path) as check:
            assert check.execute("SELECT version FROM corral_schema").fetchone() == (15,)
            truth = dict(check.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
            groups = check.execute("SELECT grp, waiting, active FROM groups").fetchall()
            grouped = check.execute(
                "SELECT grp, SUM(state = 'waiting'), SUM(state = 'active') FROM jobs"
                " WHERE grp IS NOT NULL AND state IN ('waiting', 'active') GROUP BY grp"
            ).fetchall()
        assert counts == {s.value: 0 for s in JobState} | truth | {"paused": 0}
        assert counts["completed"] == 1 and counts["active"] == 2 and counts["waiting"] == 2
        assert groups == grouped
    finally:
        await app.close()
