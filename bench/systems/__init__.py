"""System adapters, imported lazily so one broken peer cannot stop the others."""

from __future__ import annotations

import importlib
from typing import Any

REGISTRY = {
    "corral-redis": "systems.corral_redis:CorralRedis",
    "corral-redis-asyncio": "systems.corral_redis:CorralRedisAsyncio",
    "corral-redis-ctx": "systems.corral_redis:CorralRedisCtx",
    "corral-sqlite": "systems.corral_sqlite:CorralSQLite",
    "arq": "systems.arq:Arq",
    "saq": "systems.saq:Saq",
    "taskiq": "systems.taskiq:Taskiq",
    "celery": "systems.celery:CeleryRedis",
    "rq": "systems.rq:RQ",
    "dramatiq": "systems.dramatiq:Dramatiq",
    "huey": "systems.huey:Huey",
    "bullmq-py": "systems.bullmq_py:BullMQPy",
    "bullmq-node": "systems.node_bullmq:BullMQNode",
    "huey-sqlite": "systems.huey_sqlite:HueySQLite",
    "django-db": "systems.django_db:DjangoDB",
}

LABELS = {
    "corral-redis": "Corral (Redis)",
    "corral-redis-asyncio": "Corral (Redis), asyncio loop",
    "corral-redis-ctx": "Corral (Redis), body via ctx.redis",
    "corral-sqlite": "Corral (SQLite)",
    "arq": "arq",
    "saq": "SAQ",
    "taskiq": "Taskiq (Redis stream)",
    "celery": "Celery (Redis broker)",
    "rq": "RQ",
    "dramatiq": "Dramatiq (Redis)",
    "huey": "Huey (Redis)",
    "bullmq-py": "BullMQ (Python port)",
    "bullmq-node": "BullMQ (Node)",
    "huey-sqlite": "Huey (SQLite)",
    "django-db": "Django tasks (database, SQLite)",
}


def load(system_id: str) -> Any:
    """The adapter class for ``system_id`` (raises whatever its import raises)."""
    module, _, name = REGISTRY[system_id].partition(":")
    return getattr(importlib.import_module(module), name)
