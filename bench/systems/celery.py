"""Celery with the Redis broker: ``celery -A systems.celery_app worker -P prefork -c P``.

kombu supports redis-py < 6.5, so Celery lives in bench/.venv/redis6 and its producer
runs there too (``systems.producer``); the app is in ``systems.celery_app``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from systems.base import System


class CeleryRedis(System):
    id = "celery"
    label = "Celery (Redis broker)"
    package = "celery"
    extra_packages = ("kombu",)
    venv = "redis6"
    bulk_api = "group(...).apply_async() (publishes each message through one producer)"
    settings: ClassVar[dict[str, Any]] = {
        "worker": "celery -A systems.celery_app worker -P prefork -c P -l WARNING "
        "(one command: P pool processes + the main process)",
        "event loop": "none (sync)",
        "concurrency": "P prefork processes, 1 job each",
        "prefetch_multiplier": "4 (default)",
        "task": "def (sync)",
        "acks": "early: before the job runs (acks_late=False, default)",
        "retention": "no result backend (nothing kept)",
    }

    async def one(self, i: int, kind: str) -> None:
        from systems.celery_app import TASKS

        TASKS[kind].delay(i)

    async def bulk(self, n: int, kind: str = "incr") -> None:
        from celery import group

        from systems.celery_app import TASKS

        group(TASKS[kind].s(i) for i in range(n)).apply_async()

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [self.tool("celery"), "-A", "systems.celery_app", "worker", "-P", "prefork"]
        return [[*cmd, "-c", str(processes), "-l", "WARNING"]]
