"""Django tasks' database backend on SQLite (an embedded peer, scenarios k, l, m):
``python -m django db_worker``, one per process, on one file.

Django 6 has ``django.tasks`` built in but needs Python >= 3.12; on an older Python
this runs Django 5.2 with the django-tasks backport of the same API. The database
backend is django-tasks-db's ``DatabaseBackend`` (the one that shipped inside
django-tasks before 0.12). Settings: ``systems.django_settings``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from systems.base import System
from systems.common import QUEUE, cpu, noop

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "systems.django_settings")

try:
    from django.tasks import task  # Django >= 6.0
except ImportError:
    from django_tasks import task


@task(queue_name=QUEUE)
def empty(i: int) -> None:
    noop()


@task(queue_name=QUEUE)
def small_cpu(i: int) -> None:
    cpu()


TASKS = {"noop": empty, "cpu": small_cpu}


class DjangoDB(System):
    id = "django-db"
    label = "Django tasks (database, SQLite)"
    package = "django"
    extra_packages = ("django-tasks", "django-tasks-db")
    bulk_api = "none: a loop of task.enqueue() (one INSERT each), in one transaction"
    only = "klm"
    embedded = True
    # A few hundred jobs/s (about 2.4 ms of CPU per job): 3,000 per drain keeps a run
    # of k, l and m near a minute.
    caps: ClassVar[dict[str, int]] = {"drain": 3_000}
    settings: ClassVar[dict[str, Any]] = {
        "worker": "python -m django db_worker --queue-name bench --no-startup-delay "
        "--no-reload -v 0 (one command per process); --interval 1 s (default: the "
        "sleep when the queue is empty, never reached in a drain)",
        "storage": "django_tasks_db.DatabaseBackend on one SQLite file: WAL, "
        "synchronous NORMAL (as Corral's), transaction_mode IMMEDIATE, timeout 5 s; "
        "each job is a claim transaction (BEGIN EXCLUSIVE: select + update) and a "
        "result update",
        "event loop": "none (sync)",
        "concurrency": "1 job at a time per process (db_worker has no pool)",
        "task": "def (sync), @task(queue_name='bench')",
        "acks": "after the job (status RUNNING, then SUCCESSFUL)",
        "retention": "every finished task row kept (default)",
    }

    def db_path(self) -> Path:
        return self.ctx.work_dir / "django-bench.db"

    async def open(self) -> None:
        os.environ["BENCH_SQLITE_DB"] = str(self.db_path())
        # The harness's own loop calls the ORM directly (enqueues are timed as such).
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        import django

        django.setup()
        await self.reset()

    async def reset(self) -> None:
        from django.core.management import call_command
        from django.db import connections

        connections.close_all()
        # The settings may have been read before open() set BENCH_SQLITE_DB (a task
        # decorator can load them at import): point the connection at the file anyway.
        connections["default"].settings_dict["NAME"] = str(self.db_path())
        for suffix in ("", "-wal", "-shm"):
            self.db_path().with_name(self.db_path().name + suffix).unlink(missing_ok=True)
        call_command("migrate", verbosity=0, interactive=False)

    async def one(self, i: int, kind: str) -> None:
        TASKS[kind].enqueue(i)

    async def bulk(self, n: int, kind: str = "noop") -> None:
        from django.db import transaction

        task_ = TASKS[kind]
        with transaction.atomic():
            for i in range(n):
                task_.enqueue(i)

    def worker_env(self) -> dict[str, str]:
        return {
            "BENCH_SQLITE_DB": str(self.db_path()),
            "DJANGO_SETTINGS_MODULE": "systems.django_settings",
        }

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [self.python(), "-m", "django", "db_worker", "--queue-name", QUEUE]
        return [[*cmd, "--no-startup-delay", "--no-reload", "-v", "0"]] * processes
