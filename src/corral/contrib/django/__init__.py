"""Corral for Django: a ``django.tasks`` backend, workers, checks and helpers.

Needs Django and (on Django 5.2) the ``django-tasks`` backport: ``pip install
'corral[django]'``. Settings::

    INSTALLED_APPS = [..., "corral.contrib.django"]  # (+ "django_tasks" on 5.2)
    TASKS = {"default": {"BACKEND": "corral.contrib.django.CorralBackend",
                         "OPTIONS": {"url": "redis://localhost:6379/0"}}}

then ``manage.py corral_worker``.
"""

try:
    import django  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError("corral.contrib.django needs Django: pip install 'corral[django]'") from exc

from corral.contrib.django._compat import TASKS_MODULE
from corral.contrib.django.backend import CorralBackend
from corral.contrib.django.task import CorralTask, corral_task
from corral.contrib.django.transaction import enqueue_on_commit

__all__ = ["TASKS_MODULE", "CorralBackend", "CorralTask", "corral_task", "enqueue_on_commit"]
