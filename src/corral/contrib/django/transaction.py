"""Enqueue once the surrounding database transaction commits."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction

from corral.contrib.django._compat import Task

__all__ = ["enqueue_on_commit"]


def enqueue_on_commit(
    task: Task[Any, Any], /, *args: Any, using: str | None = None, **kwargs: Any
) -> None:
    """Enqueue ``task(*args, **kwargs)`` when the current transaction of database
    ``using`` (default: the default one) commits; nothing when it rolls back
    (outside a transaction: now).

    The job then never runs before the rows it reads exist, and a rolled-back view
    leaves no job behind. On a Corral backend the arguments are checked now (signature
    and JSON), so a bad call fails in the view, not in the commit. An enqueue that
    fails at commit time (the store is down) raises from the commit, as Django's
    ``on_commit`` callbacks do. (A task parameter named ``using`` cannot go through
    this helper: ``transaction.on_commit(partial(task.enqueue, ...))`` then.)
    """
    from corral.contrib.django.backend import CorralBackend

    backend = task.get_backend()
    if isinstance(backend, CorralBackend):
        backend.check_call(task, args, kwargs)
    transaction.on_commit(partial(task.enqueue, *args, **kwargs), using=using)
