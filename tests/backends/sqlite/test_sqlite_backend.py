"""SQLite-specific behaviour: URLs, schema, several processes on one file."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from corral import ConfigurationError, Corral, JobState
from corral.backends.sqlite import SQLiteBackend
from corral.backends.sqlite.backend import path_from_url
from corral.backends.sqlite.migrations import MIGRATIONS
from tests.process.conftest import WorkerProcess, wait_until


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///corral.db", "corral.db"),
        ("sqlite:////tmp/x/corral.db", "/tmp/x/corral.db"),
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite:///with%20space.db", "with space.db"),
    ],
)
def test_path_from_url(url: str, path: str) -> None:
    assert path_from_url(url) == path


@pytest.mark.parametrize("url", ["sqlite://host/x.db", "sqlite:///", "redis://x"])
def test_bad_sqlite_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="SQLite URL"):
        path_from_url(url)


def test_default_url_is_sqlite_in_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = Corral()
    assert app.url == "sqlite:///corral.db"
    job = app.enqueue_sync("t.x", [1])
    assert (tmp_path / "corral.db").exists()
    assert app.get_job_sync(job.id).state is JobState.WAITING
    app.close_sync()


async def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    backend = SQLiteBackend(f"sqlite:///{db}")
    await backend.connect()
    await backend.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM corral_schema").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    backend = SQLiteBackend(f"sqlite:///{db}")
    await backend.connect()
    await backend.close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE corral_schema SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigurationError, match="schema version 99"):
        await SQLiteBackend(f"sqlite:///{db}").connect()


async def test_unopenable_file_names_the_path(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "c.db"
    with pytest.raises(Exception, match="missing-dir"):
        await SQLiteBackend(f"sqlite:///{target}").connect()


def test_memory_database_is_shared_by_sync_and_async_calls() -> None:
    app = Corral("sqlite:///:memory:")

    @app.task(name="mem.t")
    def t(x: int) -> int:
        return x

    job = t.enqueue_sync(1)

    async def read() -> JobState:
        try:
            return (await app.get_job(job.id)).state
        finally:
            await app.close()

    assert asyncio.run(read()) is JobState.WAITING
    app.close_sync()


def _produce(url: str, start: int, count: int) -> None:
    app = Corral(url)
    for i in range(start, start + count):
        app.enqueue_sync("t.x", [i], job_id=f"p{i}")
    app.close_sync()


@pytest.mark.slow
def test_many_producer_processes_never_see_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    Corral(url).queues_sync()  # create the schema once
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_produce, args=(url, n * 200, 200)) for n in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 6
    app = Corral(url)
    assert app.queue("default").counts_sync()["waiting"] == 1200
    app.close_sync()


def _runs(ledger: Path) -> list[tuple[str, int, int]]:
    if not ledger.exists():
        return []
    conn = sqlite3.connect(ledger, timeout=30)
    try:
        return conn.execute("SELECT job, attempt, pid FROM runs").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


@pytest.mark.slow
def test_worker_processes_share_one_file_each_job_runs_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    ledger = tmp_path / "ledger.db"
    app = Corral(url)
    jobs = 400
    for _ in range(jobs):
        app.enqueue_sync("proc.ledger", [str(ledger)], queue="ledger")
    workers = [WorkerProcess(url, "-q", "ledger", "-c", "4") for _ in range(4)]
    try:
        wait_until(lambda: app.queue("ledger").counts_sync()["completed"] == jobs, timeout=60)
    finally:
        for w in workers:
            w.stop()
    runs = _runs(ledger)
    assert len(runs) == jobs
    assert len({job for job, _, _ in runs}) == jobs
    assert len({pid for _, _, pid in runs}) > 1  # the work was shared
    app.close_sync()


@pytest.mark.slow
def test_sigkilled_worker_on_sqlite_is_recovered(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    app = Corral(url)
    job = app.enqueue_sync("proc.sleepy", [60], queue="proc")
    first = WorkerProcess(url, "-q", "proc", "--lease", "1")
    try:
        wait_until(lambda: app.get_job_sync(job.id, "proc").state is JobState.ACTIVE)
        first.signal(signal.SIGKILL)
        first.wait(5)
        second = WorkerProcess(url, "-q", "proc", "--lease", "1")
        try:
            started = time.monotonic()
            assert job.result_sync(timeout=15)["stalls"] == 1
            assert time.monotonic() - started < 10
        finally:
            second.stop()
    finally:
        first.stop()
    app.close_sync()


def _open_at(path: str, start_at: float) -> None:
    while time.time() < start_at:
        pass
    Corral(f"sqlite:///{path}").queues_sync()


@pytest.mark.slow
def test_processes_opening_a_fresh_file_together_all_succeed(tmp_path: Path) -> None:
    # Switching a new file to WAL answers BUSY without the busy handler; every
    # opener must retry instead of failing (this crashed workers in CI).
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(6):
        path = str(tmp_path / f"fresh{round_}.db")
        start_at = time.time() + 1.0
        procs = [ctx.Process(target=_open_at, args=(path, start_at)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        assert [p.exitcode for p in procs] == [0] * 4


async def test_change_between_read_and_wait_still_wakes(tmp_path: Path) -> None:
    from corral.backends.sqlite.changes import ChangeFeed

    url = f"sqlite:///{tmp_path / 'c.db'}"
    backend = SQLiteBackend(url)
    await backend.connect()
    other = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    try:
        assert backend._store is not None
        feed = ChangeFeed(backend._store, interval=0.005, linger=1.0)
        for _ in range(20):
            event = feed.current()  # taken before the (imagined) read
            await asyncio.sleep(0.02)  # the poll may run and find nothing
            other.execute(
                "INSERT INTO stats (queue, name, value) VALUES ('q', 'x', 1) "
                "ON CONFLICT DO UPDATE SET value = value + 1"
            )
            started = time.monotonic()
            await feed.wait(event, 2.0)
            assert time.monotonic() - started < 0.5
        await feed.close()
    finally:
        other.close()
        await backend.close()


async def test_enqueue_right_after_an_empty_claim_wakes_the_worker(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    worker_side = SQLiteBackend(url)
    producer = Corral(url)
    await worker_side.connect()
    try:
        for i in range(10):
            claimed, _ = await worker_side.claim("q", 1, 30_000, "w")
            assert claimed == []
            await producer.enqueue("t.x", [i], queue="q")  # lands before the wait
            started = time.monotonic()
            await worker_side.wait_for_work(["q"], 3.0)
            assert time.monotonic() - started < 0.5
            claimed, _ = await worker_side.claim("q", 1, 30_000, "w")
            assert len(claimed) == 1
    finally:
        await worker_side.close()
        await producer.close()


async def test_history_rows_past_keeping_are_trimmed(tmp_path: Path) -> None:
    from corral.backends.sqlite.history import FAILED, add_history

    backend = SQLiteBackend(f"sqlite:///{tmp_path / 'h.db'}")
    await backend.connect()
    try:
        now = await backend.time_ms()
        hours = 3_600_000

        async def write(at: int) -> None:
            await backend._s().write(lambda conn: add_history(conn, "q", at, {FAILED: 1}))

        async def rows() -> list[tuple[int, int]]:
            sql = "SELECT step, slot FROM history ORDER BY step, slot"
            return await backend._s().read(lambda conn: conn.execute(sql).fetchall())

        await write(now - 50 * hours)  # minute and quarter both past keeping later
        await write(now - 3 * hours)  # the minute goes, the quarter stays
        assert len(await rows()) == 3  # the 3 h old write trimmed the 50 h old minute only
        await write(now)
        minute = now // 60_000
        assert await rows() == [(1, minute), (15, (minute - 180) // 15), (15, minute // 15)]
        window = await backend.history(["q"], 900_000, 96)
        assert sum(s[0] for s in window.slots["q"]) == 2
    finally:
        await backend.close()


async def test_writers_queue_on_the_lock_file_beside_the_database(tmp_path: Path) -> None:
    """A Corral write waits for the advisory lock beside the file (the kernel hands it
    over on release, instead of SQLite's sleeping busy handler), and goes on after."""
    import fcntl

    from corral.backends.base import NewJob

    path = tmp_path / "lock.db"
    backend = SQLiteBackend(f"sqlite:///{path}")
    await backend.connect()
    try:
        lock = path.with_name("lock.db-corral-lock")
        assert lock.exists()
        with lock.open("rb+") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # another process's writer, mid-transaction
            write = asyncio.ensure_future(
                backend.enqueue("q", [NewJob(id="j1", name="t", data=b"[[],{}]")])
            )
            await asyncio.sleep(0.3)
            assert not write.done()
            fcntl.flock(held, fcntl.LOCK_UN)
            async with asyncio.timeout(5):
                assert await write == [None]
        assert (await backend.counts("q"))["waiting"] == 1
    finally:
        await backend.close()
