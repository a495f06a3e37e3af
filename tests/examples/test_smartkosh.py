"""SmartKosh (seed 002, examples/smartkosh) end to end, as its users drive it:
``python -m examples.smartkosh`` as a process (migrate, Django's runserver and a real
``manage.py corral_worker``), browsers' form posts over HTTP with sessions and CSRF,
on both Corral backends, and with PostgreSQL as Django's database when a server
answers on 127.0.0.1:5432. One system per variant is shared by the module's tests.

Django is never set up in this process (its settings are per process, and the
tests of corral.contrib.django set up their own): rows are read over HTTP and, to
check for duplicates, with plain SQL."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from corral import Corral
from tests.conftest import flush

ROOT = Path(__file__).resolve().parents[2]
PG = {
    "host": os.environ.get("CORRAL_TEST_PG_HOST", "127.0.0.1"),
    "port": os.environ.get("CORRAL_TEST_PG_PORT", "5432"),
    "user": os.environ.get("CORRAL_TEST_PG_USER", "postgres"),
    "password": os.environ.get("CORRAL_TEST_PG_PASSWORD", ""),
}
CHUNK = 25
T = TypeVar("T")


def until(check: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def statement(rows: int, bad: dict[int, str] | None = None) -> bytes:
    """A CSV statement with ``rows`` data rows (lines 2..rows+1); ``bad`` replaces the
    amount on the given lines. Two identical rows (lines 2 and 3) are two
    transactions."""
    lines = ["date,description,amount,category"]
    for i in range(rows):
        line = i + 2
        amount = "-4.50" if line in (2, 3) else f"-{(line * 7) % 900 + 1}.{line % 100:02d}"
        description = "Chai Point" if line in (2, 3) else f"Shop {line}"
        amount = (bad or {}).get(line, amount)
        lines.append(f"2024-03-{line % 28 + 1:02d},{description},{amount},food")
    return ("\n".join(lines) + "\n").encode()


class Session:
    """One user's browser: a session cookie, CSRF token, form posts."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)

    def csrf(self) -> str:
        if "csrftoken" not in self.http.cookies:
            self.http.get("/login/")
        return str(self.http.cookies["csrftoken"])

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        return self.http.post(
            path, data={"csrfmiddlewaretoken": self.csrf(), **(data or {})}, **kwargs
        )

    def signup(self, name: str) -> Session:
        password = f"{name}-Very-Secret-9"
        answer = self.post(
            "/signup/", {"username": name, "password1": password, "password2": password}
        )
        assert answer.status_code == 302, answer.text
        return self

    def upload(self, name: str, content: bytes) -> int:
        """Upload through the form as a browser does; the import's id."""
        answer = self.post("/imports/", files={"file": (name, content, "text/csv")})
        assert answer.status_code == 302, answer.text
        found = re.fullmatch(r"/imports/(\d+)/", answer.headers["location"])
        assert found, answer.headers["location"]
        return int(found.group(1))

    def retry(self, import_id: int, content: bytes | None = None) -> httpx.Response:
        files = {"file": ("fixed.csv", content, "text/csv")} if content else None
        return self.post(f"/imports/{import_id}/retry/", files=files)

    def json(self, path: str) -> Any:
        answer = self.http.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def status(self, import_id: int) -> dict[str, Any]:
        return dict(self.json(f"/api/imports/{import_id}/"))

    def finished(
        self, import_id: int, seen: list[dict[str, Any]] | None = None, timeout: float = 20.0
    ) -> dict[str, Any]:
        """Poll the import until it has finished; every answer goes to ``seen``."""

        def done() -> dict[str, Any] | None:
            status = self.status(import_id)
            if seen is not None:
                seen.append(status)
            return status if status["status"] in ("completed", "failed") else None

        return until(done, timeout, f"import {import_id} finished")

    def notifications(self) -> list[dict[str, Any]]:
        return list(self.json("/api/notifications/")["notifications"])


@dataclass
class System:
    url: str
    store: str
    work: Path
    database: str  # "sqlite" or a PostgreSQL database name
    sessions: list[Session] = field(default_factory=list)

    def session(self) -> Session:
        self.sessions.append(Session(self.url))
        return self.sessions[-1]

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """A statement on Django's database, directly (``?`` placeholders)."""
        if self.database == "sqlite":
            conn = sqlite3.connect(self.work / ".smartkosh" / "db.sqlite3", timeout=20)
            try:
                with conn:  # committed
                    return list(conn.execute(query, params).fetchall())
            finally:
                conn.close()
        with psycopg.connect(dbname=self.database, **PG) as pg:
            cursor = pg.execute(query.replace("?", "%s"), params)
            return list(cursor.fetchall()) if cursor.description else []


def _postgres_database() -> tuple[str | None, str]:
    try:
        conn = psycopg.connect(dbname="postgres", connect_timeout=2, autocommit=True, **PG)
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"PostgreSQL at {PG['host']}:{PG['port']} is unreachable: {first}"
    name = f"smartkosh_{os.getpid()}_{os.urandom(3).hex()}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, ""


def _drop_postgres_database(name: str) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def live_workers(store: str) -> list[Any]:
    corral = Corral(store)
    try:
        return corral.workers_sync()
    finally:
        corral.close_sync()


def base_env(port: int) -> dict[str, str]:
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CORRAL_", "REDIS_", "DATABASE_", "DJANGO_"))
        },
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "PORT": str(port),
        "IMPORT_CHUNK_ROWS": str(CHUNK),
        "IMPORT_CHUNK_PAUSE": "0.05",  # a few chunks take long enough to be watched
    }


def launch(
    work: Path, env: dict[str, str], url: str, store: str, dead: frozenset[int] = frozenset()
) -> subprocess.Popen[bytes]:
    """``python -m examples.smartkosh`` in ``work``, once its web server answers and
    its worker has registered (``dead``: pids of killed workers whose registration
    has not expired yet); output to ``work/smartkosh.log`` (appended)."""
    log = work / "smartkosh.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "examples.smartkosh"],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"{url}/login/", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        until(up, 30, "the web server answering")
        until(
            lambda: [w for w in live_workers(store) if w.pid not in dead],
            30,
            "the worker registered",
        )
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise
    return proc


def stop(
    proc: subprocess.Popen[bytes], log: Path, store: str, dead: frozenset[int] = frozenset()
) -> None:
    """Ctrl-C: the launcher exits 0, its worker stopped cleanly and unregistered."""
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0, log.read_text()
    output = log.read_text()
    assert "stopped (processed" in output, output
    assert "Traceback" not in output, output
    assert not [w for w in live_workers(store) if w.pid not in dead]


@pytest.fixture(
    scope="module",
    params=["sqlite", "redis", "redis+postgres"],
    ids=["corral-sqlite", "corral-redis", "corral-redis-postgres"],
)
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """``python -m examples.smartkosh`` in a fresh directory, stopped with SIGINT
    (Ctrl-C) at the end: it must exit 0 with its worker stopped cleanly."""
    work = tmp_path_factory.mktemp(f"smartkosh-{request.param}")
    port = free_port()
    env = base_env(port)
    database = "sqlite"
    if request.param.startswith("redis"):
        store = request.getfixturevalue("redis_server").url
        flush(store)
        env["REDIS_URL"] = store
    else:  # the defaults: .smartkosh/corral.db and .smartkosh/db.sqlite3
        store = f"sqlite:///{work / '.smartkosh' / 'corral.db'}"
    if request.param.endswith("postgres"):
        name, unreachable = _postgres_database()
        if name is None:
            pytest.skip(unreachable)
        database = name
        env["DATABASE_URL"] = (
            f"postgres://{PG['user']}:{PG['password']}@{PG['host']}:{PG['port']}/{name}"
        )
    system = System(f"http://127.0.0.1:{port}", store, work, database)
    proc = None
    try:
        proc = launch(work, env, system.url, store)
        yield system
        stop(proc, work / "smartkosh.log", store)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for session in system.sessions:
            session.http.close()
        if database != "sqlite":
            _drop_postgres_database(database)


def test_an_upload_is_imported_in_chunks_with_progress_and_a_notification(system: System) -> None:
    asha = system.session().signup("asha")
    content = statement(250)
    import_id = asha.upload("march.csv", content)

    seen: list[dict[str, Any]] = []
    done = asha.finished(import_id, seen)
    assert done["status"] == "completed", done
    assert (done["rows"], done["total"], done["imported"], done["skipped"]) == (250, 250, 250, 0)
    assert done["task"]["status"] == "SUCCESSFUL" and done["task"]["attempts"] == 1
    assert done["task"]["progress"]["rows"] == 250
    # Progress was visible while it ran, chunk by chunk, and only went forward.
    running = [s for s in seen if s["status"] == "processing" and 0 < s["rows"] < 250]
    assert running, [(s["status"], s["rows"]) for s in seen]
    assert all(s["rows"] % CHUNK == 0 and s["total"] == 250 for s in running)
    assert any(0 < s.get("task", {}).get("progress", {}).get("rows", 0) < 250 for s in running)
    rows = [s["rows"] for s in seen]
    assert rows == sorted(rows)

    page = asha.http.get(f"/imports/{import_id}/")  # the page with the bar
    assert page.status_code == 200
    assert '<progress id="bar" max="250" value="250">' in page.text
    assert "250 of 250 rows · 250 new · 0 already there" in page.text
    assert f"/api/imports/{import_id}/" in page.text  # what its script polls
    page = asha.http.get("/imports/")
    assert page.status_code == 200 and "250 transactions in total." in page.text

    listed = asha.json("/api/transactions/")
    assert listed["count"] == 250
    assert sorted(t["line"] for t in listed["transactions"]) == list(range(2, 252))
    assert sum(t["description"] == "Chai Point" for t in listed["transactions"]) == 2

    # The file was saved to disk; the job carries its path, not its content.
    corral = Corral(system.store)
    try:
        job = corral.get_job_sync(done["taskId"])
    finally:
        corral.close_sync()
    assert job.name == "examples.smartkosh.ledger.tasks.import_statement"
    assert job.queue == "imports"
    assert job.args[0] == import_id
    path = Path(job.args[1])
    assert path.is_relative_to(system.work / ".smartkosh" / "media")
    assert path.read_bytes() == content

    [note] = asha.notifications()
    assert note["kind"] == "success" and note["importId"] == import_id
    assert note["message"] == "Imported 250 new transactions from march.csv."
    page = asha.http.get("/notifications/")
    assert page.status_code == 200
    assert "Imported 250 new transactions from march.csv." in page.text
    assert re.search(r'class="badge" id="unread">1<', page.text)
    assert asha.post("/notifications/").status_code == 302  # mark all as read
    assert asha.json("/api/notifications/")["unread"] == 0

    # The same statement again adds nothing: every row's natural key is there.
    again = asha.finished(asha.upload("march-again.csv", content))
    assert (again["status"], again["imported"], again["skipped"]) == ("completed", 0, 250)
    assert asha.json("/api/transactions/")["count"] == 250
    assert asha.notifications()[0]["message"] == (
        "Imported 0 new transactions from march-again.csv; 250 were already there."
    )


def test_a_bad_row_fails_naming_its_line_and_a_retry_completes_without_duplicates(
    system: System,
) -> None:
    ravi = system.session().signup("ravi")
    good = statement(100)
    bad = statement(100, bad={63: "12.5O"})
    import_id = ravi.upload("april.csv", bad)

    failed = ravi.finished(import_id)
    assert failed["status"] == "failed", failed
    assert failed["error"] == "line 63: amount '12.5O' is not a number"
    assert failed["errorLine"] == 63
    # The rows before line 63 are in (two whole chunks and a part), and the bad row
    # spent no further attempts: a file does not fix itself.
    assert (failed["imported"], failed["rows"]) == (61, 61)
    assert failed["task"]["status"] == "FAILED" and failed["task"]["attempts"] == 1
    assert failed["task"]["errors"] == ["examples.smartkosh.ledger.statements.BadRow"]
    [note] = ravi.notifications()
    assert (note["kind"], note["importId"], note["link"]) == (
        "error",
        import_id,
        "/imports/failed/",
    )
    assert "line 63: amount '12.5O' is not a number" in note["message"]

    # The failed-imports list, with its retry form.
    page = ravi.http.get("/imports/failed/")
    assert page.status_code == 200
    row = re.search(rf'<tr id="import-{import_id}">(.*?)</tr>', page.text, re.S)
    assert row, page.text
    assert "april.csv" in row.group(1) and "line 63: amount" in row.group(1)
    assert f'action="/imports/{import_id}/retry/"' in row.group(1)
    assert [i["id"] for i in ravi.json("/api/imports/?status=failed")["imports"]] == [import_id]

    # Retry as is: the same Corral job runs again, fails on the same line, and the
    # 61 rows already imported are not imported twice.
    answer = ravi.retry(import_id)
    assert (answer.status_code, answer.headers["location"]) == (302, f"/imports/{import_id}/")
    again = ravi.finished(import_id)  # the retry queued it before answering
    assert again["runs"] == 2
    assert (again["status"], again["errorLine"], again["taskId"]) == (
        "failed",
        63,
        failed["taskId"],
    )
    assert (again["imported"], again["skipped"]) == (0, 61)
    assert ravi.json("/api/transactions/")["count"] == 61
    assert [n["kind"] for n in ravi.notifications()] == ["error", "error"]

    # Retry with the corrected file: it completes, adding only the missing rows.
    assert ravi.retry(import_id, good).status_code == 302
    fixed = ravi.finished(import_id)
    assert fixed["runs"] == 3
    assert fixed["status"] == "completed", fixed
    assert (fixed["imported"], fixed["skipped"], fixed["error"]) == (39, 61, None)
    lines = sorted(t["line"] for t in ravi.json("/api/transactions/")["transactions"])
    assert lines == list(range(2, 102))  # each line once
    assert system.sql(
        "SELECT COUNT(*), COUNT(DISTINCT t.fingerprint) FROM ledger_transaction t "
        "JOIN auth_user u ON u.id = t.user_id WHERE u.username = ?",
        "ravi",
    ) == [(100, 100)]
    latest = ravi.notifications()[0]
    assert latest["kind"] == "success"
    assert latest["message"] == (
        "Imported 39 new transactions from april.csv; 61 were already there."
    )
    assert ravi.json("/api/imports/?status=failed")["imports"] == []
    assert f'id="import-{import_id}"' not in ravi.http.get("/imports/failed/").text

    # Another user sees none of it.
    other = system.session().signup("meera")
    assert other.notifications() == []
    assert other.http.get(f"/api/imports/{import_id}/").status_code == 404
    assert other.retry(import_id).status_code == 404


def test_bad_uploads_and_retries_are_refused_with_a_reason(system: System) -> None:
    user = system.session().signup("kiran")
    answer = user.post("/imports/", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert answer.status_code == 400 and "notes.txt is not a .csv file" in answer.text
    answer = user.post(
        "/imports/",
        files={"file": ("empty.csv", b"", "text/csv")},
        headers={"Accept": "application/json"},
    )
    assert (answer.status_code, answer.json()) == (400, {"error": "The submitted file is empty."})
    answer = user.http.get("/api/imports/?status=lost")
    assert answer.status_code == 400 and "status 'lost'" in answer.json()["error"]

    # A header without an amount column fails at line 1, naming what is missing.
    import_id = user.upload("odd.csv", b"date,description,value\n2024-01-01,Tea,-3\n")
    failed = user.finished(import_id)
    assert failed["status"] == "failed"
    assert failed["error"].startswith("line 1: the header lacks amount")
    # A task_finished signal lost (a worker killed right after the job failed) leaves
    # the import in flight without its notification: the pages repair that once.
    system.sql("UPDATE ledger_importjob SET status = 'processing' WHERE id = ?", import_id)
    system.sql("DELETE FROM ledger_notification WHERE import_job_id = ?", import_id)
    [note] = [n for n in user.notifications() if n["importId"] == import_id]
    assert note["kind"] == "error" and "line 1: the header lacks amount" in note["message"]
    assert user.status(import_id)["status"] == "failed"
    assert len(user.notifications()) == 1  # once
    done = user.finished(user.upload("ok.csv", statement(3)))
    # The same for a completed import: the receiver marks it completed, from the job.
    system.sql(
        "UPDATE ledger_importjob SET status = 'processing', finished_at = NULL WHERE id = ?",
        done["id"],
    )
    system.sql("DELETE FROM ledger_notification WHERE import_job_id = ?", done["id"])
    repaired = user.status(done["id"])
    assert (repaired["status"], repaired["task"]["status"]) == ("completed", "SUCCESSFUL")
    assert repaired["finishedAt"] is not None
    assert [n["message"] for n in user.notifications() if n["importId"] == done["id"]] == [
        "Imported 3 new transactions from ok.csv."
    ]
    answer = user.retry(done["id"])
    assert answer.status_code == 302  # back to the page, with the reason as a message
    page = user.http.get(answer.headers["location"])
    assert "ok.csv is completed, not failed" in page.text
    answer = user.post(f"/imports/{done['id']}/retry/", headers={"Accept": "application/json"})
    assert (answer.status_code, answer.json()) == (
        409,
        {"error": "ok.csv is completed, not failed"},
    )


def test_the_launcher_names_a_bad_setting_and_starts_nothing(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "DATABASE_URL": "mysql://root@localhost/smartkosh",
    }
    done = subprocess.run(
        [sys.executable, "-m", "examples.smartkosh"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "smartkosh: DATABASE_URL='mysql://root@localhost/smartkosh': unsupported scheme "
        "'mysql'; use postgres://user:password@host:5432/name or sqlite:///path"
    )
    assert not (tmp_path / ".smartkosh").exists()


@pytest.mark.slow
def test_a_worker_killed_mid_import_hands_it_back_and_the_rerun_adds_nothing_twice(
    tmp_path: Path,
) -> None:
    """SIGKILL on ``manage.py corral_worker`` in the middle of an import: once the
    system is started again, the job comes back after its lease and completes,
    skipping the chunks the killed run had committed."""
    port = free_port()
    env = {**base_env(port), "IMPORT_CHUNK_PAUSE": "0.2"}
    store = f"sqlite:///{tmp_path / '.smartkosh' / 'corral.db'}"
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "smartkosh.log"
    proc = launch(tmp_path, env, url, store)
    user = Session(url)
    try:
        user.signup("dev")
        import_id = user.upload("may.csv", statement(250))
        until(
            lambda: user.status(import_id)["rows"] >= 2 * CHUNK,
            what="two chunks written",
        )
        [worker] = live_workers(store)
        os.kill(worker.pid, signal.SIGKILL)
        assert proc.wait(30) == 1  # the launcher saw its worker die and stopped
        assert "the worker exited" in log.read_text()
        database = System(url, store, tmp_path, "sqlite")
        [(status, rows)] = database.sql(
            "SELECT status, rows_done FROM ledger_importjob WHERE id = ?", import_id
        )
        assert status == "processing" and 2 * CHUNK <= rows < 250

        proc = launch(tmp_path, env, url, store, dead=frozenset([worker.pid]))
        done = user.finished(import_id, timeout=30)
        assert done["status"] == "completed", done
        assert done["runs"] == 2 and done["skipped"] >= rows
        assert done["imported"] + done["skipped"] == 250
        lines = sorted(t["line"] for t in user.json("/api/transactions/")["transactions"])
        assert lines == list(range(2, 252))
        assert [n["kind"] for n in user.notifications()] == ["success"]
        stop(proc, log, store, dead=frozenset([worker.pid]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        user.http.close()
