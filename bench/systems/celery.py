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
    caps: ClassVar[dict[str, int]] = {"bulk": 10_000, "drain": 5_000}
    settings: ClassVar[dict[str, Any]] = {
        "worker": "celery -A systems.celery_app worker -P prefork -c P -l WARNING "
        "(one command: P pool processes + the main process)",
        "prefetch_multiplier": "4 (default)",
        "task": "def (sync)",
        "results": "none (no result backend)",
    }

    async def one(self, i: int, kind: str) -> None:
        from systems.celery_app import incr, stamp

        (incr if kind == "incr" else stamp).delay(i)

    async def bulk(self, n: int) -> None:
        from celery import group

        from systems.celery_app import incr

        group(incr.s(i) for i in range(n)).apply_async()

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [self.tool("celery"), "-A", "systems.celery_app", "worker", "-P", "prefork"]
        return [[*cmd, "-c", str(processes), "-l", "WARNING"]]
