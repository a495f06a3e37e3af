"""Django set up once for these tests (its settings are per process): the test
project's SQLite file, the PostgreSQL database when a server answers, and fixtures for
a Corral backend on each store and a worker in a thread."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import django
import psycopg
import pytest

from corral.worker import Worker

PG = {
    "host": os.environ.get("CORRAL_TEST_PG_HOST", "127.0.0.1"),
    "port": os.environ.get("CORRAL_TEST_PG_PORT", "5432"),
    "user": os.environ.get("CORRAL_TEST_PG_USER", "postgres"),
    "password": os.environ.get("CORRAL_TEST_PG_PASSWORD", ""),
}
TMP = tempfile.mkdtemp(prefix="corral-django-")


def _create_postgres_db() -> tuple[str | None, str]:
    """A fresh database on the PostgreSQL server, or (None, why it is unreachable)."""
    try:
        conn = psycopg.connect(dbname="postgres", connect_timeout=2, autocommit=True, **PG)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"PostgreSQL at {PG['host']}:{PG['port']} is unreachable: {first}"
    name = f"corral_django_{os.getpid()}_{os.urandom(3).hex()}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, ""


PG_DB, PG_UNREACHABLE = _create_postgres_db()
os.environ["CORRAL_DJANGO_SQLITE"] = os.path.join(TMP, "django.sqlite3")
if PG_DB:
    os.environ["CORRAL_DJANGO_POSTGRES"] = PG_DB
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.contrib.django.project.settings"
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import override_settings  # noqa: E402

DB_ALIASES = ["default", *(["postgres"] if PG_DB else [])]
for _alias in DB_ALIASES:
    call_command("migrate", run_syncdb=True, database=_alias, verbosity=0)
connections.close_all()


@pytest.fixture(scope="session", autouse=True)
def _drop_databases() -> Iterator[None]:
    yield
    connections.close_all()
    shutil.rmtree(TMP, ignore_errors=True)
    if PG_DB:
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """The Django database a test writes through: the SQLite file, then PostgreSQL
    (skipped, saying why, only when no server answers)."""
    from tests.contrib.django.testapp.models import Note

    if request.param == "postgres" and not PG_DB:
        pytest.skip(PG_UNREACHABLE)
    alias = "default" if request.param == "sqlite" else "postgres"
    Note.objects.using(alias).all().delete()
    yield alias
    connections.close_all()


def tasks_setting(url: str, **options: Any) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "corral.contrib.django.CorralBackend",
            "QUEUES": ["default", "emails"],
            "OPTIONS": {"url": url, **options},
        }
    }


@pytest.fixture
def backend(store_url: str) -> Iterator[Any]:
    """The ``default`` task backend: CorralBackend on the test's store."""
    from corral.contrib.django._compat import task_backends

    with override_settings(TASKS=tasks_setting(store_url)):
        corral_backend = task_backends["default"]
        try:
            yield corral_backend
        finally:
            corral_backend.app.close_sync()


class WorkerThread:
    """A Corral worker running in a thread of its own (its own event loop), as
    ``corral_worker`` runs one, so the test's thread stays sync like a Django view."""

    def __init__(self, app: Any, queues: list[str]) -> None:
        self.worker = Worker(app, queues, concurrency=4, grace=2)
        self.app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._main, name="test-worker", daemon=True)
        self.thread.start()
        assert self._started.wait(10)

    def _main(self) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._started.set()
            try:
                await self.worker.run()
            finally:
                await self.app.close()

        asyncio.run(run())

    def stop(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(15)
        assert not self.thread.is_alive(), "the worker did not stop"


@pytest.fixture
def worker(backend: Any) -> Iterator[WorkerThread]:
    running = WorkerThread(backend.app, ["default", "emails"])
    try:
        yield running
    finally:
        running.stop()


def wait_until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def finished(backend: Any, result_id: str, timeout: float = 10.0) -> Any:
    """The result of ``result_id`` once it is finished."""

    def done() -> Any:
        result = backend.get_result(result_id)
        return result if result.is_finished else None

    return wait_until(done, timeout, f"task result {result_id} to finish")
