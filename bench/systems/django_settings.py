"""Django settings of the Django tasks peer (systems.django_db): the database backend on
one SQLite file, ``BENCH_SQLITE_DB``, in WAL mode with ``synchronous = NORMAL`` (as
Corral's SQLite backend)."""

from __future__ import annotations

import os

SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django_tasks", "django_tasks_db"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_SQLITE_DB", "/tmp/corral-bench-django.db"),
        "OPTIONS": {
            # Django 5.1+: run on each new connection; IMMEDIATE as Django's docs advise
            # for concurrent writers (the worker's claim is EXCLUSIVE in any case).
            "init_command": "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 5,
        },
    }
}
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["bench"],
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING_CONFIG = None
