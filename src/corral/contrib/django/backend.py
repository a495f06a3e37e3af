"""``CorralBackend``: Corral as the worker and store of Django's Tasks framework.

>>> TASKS = {
...     "default": {
...         "BACKEND": "corral.contrib.django.CorralBackend",
...         "QUEUES": ["default", "emails"],
...         "OPTIONS": {"url": "redis://localhost:6379/0"},
...     }
... }
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

from django.utils import timezone

from corral._sync import run_sync
from corral.contrib.django._compat import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    normalize_json,
    task_enqueued,
)
from corral.contrib.django.binding import Binding, binding_for
from corral.contrib.django.results import to_result
from corral.contrib.django.task import CorralTask
from corral.errors import CorralError, JobNotFound, ValidationError
from corral.job import Job
from corral.policy import Backoff

__all__ = ["CorralBackend"]


class CorralBackend(BaseTaskBackend):
    """A ``django.tasks`` backend whose jobs Corral stores and runs.

    ``OPTIONS``: ``url`` (``redis://...`` or ``sqlite:///path``; default
    ``CORRAL_URL``, else ``REDIS_URL``, else ``sqlite:///corral.db``), ``prefix``,
    ``durable``; or ``app``, the ``module:attribute`` of a Corral app of your own
    (its native tasks, listeners and notifications then share the worker); and the
    defaults of tasks that set none: ``attempts`` (default 1, Django's behaviour),
    ``backoff``, ``timeout``. A task's import path is its Corral task name; its
    ``queue_name`` is the Corral queue, ``priority`` the Corral priority (the same
    number: Django's -100..100 lies inside Corral's -1000..1000) and ``run_after`` the
    job's delay. Workers: ``manage.py corral_worker``.
    """

    task_class = CorralTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.binding: Binding = binding_for(alias, self.options)

    @property
    def app(self) -> Any:
        """The :class:`corral.Corral` app behind this backend."""
        return self.binding.app

    def validate_task(self, task: Task[Any, Any]) -> None:
        super().validate_task(task)
        try:
            self.binding.register(task)
        except ValidationError as exc:
            raise InvalidTask(str(exc)) from None

    # -- enqueue --------------------------------------------------------------------

    def _prepared(self, task: Task[Any, Any], args: Any, kwargs: Any) -> tuple[Any, Any, Any]:
        """The Corral task with this Django task's options, and the arguments as Django
        would store them (a tuple as a list)."""
        self.validate_task(task)
        corral = self.binding.app.tasks[task.module_path]
        options: dict[str, Any] = {"queue": task.queue_name, "priority": task.priority}
        if task.run_after is not None:
            options["delay"] = _aware(task.run_after)
        for name in ("attempts", "timeout"):
            if getattr(task, name, None) is not None:
                options[name] = getattr(task, name)
        backoff = getattr(task, "backoff", None)
        if backoff is not None and (not callable(backoff) or isinstance(backoff, Backoff)):
            options["backoff"] = backoff  # a callable one stays the registered default
        # What JSON cannot hold is left for Corral to refuse, naming the argument.
        with contextlib.suppress(TypeError, ValueError):
            args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        return corral.options(**options), args, kwargs

    def check_call(self, task: Task[Any, Any], args: Any, kwargs: Any) -> None:
        """Raise what :meth:`enqueue` would for these arguments (InvalidArguments,
        SerializationError, PayloadTooLarge...), storing nothing."""
        corral, args, kwargs = self._prepared(task, args, kwargs)
        corral.prepare(tuple(args), dict(kwargs))

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        """Store a job for ``task`` and send ``task_enqueued``. Blocking (from sync
        code; async code awaits :meth:`aenqueue`)."""
        _not_async("task.enqueue()", "await task.aenqueue()")
        corral, args, kwargs = self._prepared(task, args, kwargs)
        job: Job = corral.enqueue_sync(*args, **kwargs)
        result = to_result(task, job, self.alias)
        task_enqueued.send(sender=type(self), task_result=result)
        return result

    async def aenqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        """Store a job for ``task`` from async code and send ``task_enqueued``."""
        corral, args, kwargs = self._prepared(task, args, kwargs)
        job: Job = await corral.enqueue(*args, **kwargs)
        result = to_result(task, job, self.alias)
        await task_enqueued.asend(sender=type(self), task_result=result)
        return result

    # -- results --------------------------------------------------------------------

    def get_result(self, result_id: str) -> TaskResult[Any]:
        """The result of the job ``result_id`` as stored now; raises
        TaskResultDoesNotExist for an unknown id (or a job that is not a Django
        task of this backend)."""
        _not_async("get_result()", "await aget_result()")
        return run_sync(self.aget_result(result_id))

    async def aget_result(self, result_id: str) -> TaskResult[Any]:
        """See :meth:`get_result`."""
        try:
            result: TaskResult[Any] = await self.binding.result(result_id)
        except (JobNotFound, ValidationError, LookupError) as exc:
            raise TaskResultDoesNotExist(str(exc)) from None
        return result

    def get_job(self, result_id: str) -> Job:
        """The Corral job behind a result, for what Django's API lacks: its
        ``progress`` and ``logs``, ``cancel_sync()``, ``retry_sync()`` (a failed job
        runs again), ``blockers_sync()``. Raises TaskResultDoesNotExist."""
        _not_async("get_job()", "await aget_job()")
        return run_sync(self.aget_job(result_id))

    async def aget_job(self, result_id: str) -> Job:
        """See :meth:`get_job`."""
        try:
            return await self.binding.app.get_job(result_id)
        except (JobNotFound, ValidationError) as exc:
            raise TaskResultDoesNotExist(str(exc)) from None


def _not_async(call: str, instead: str) -> None:
    """Blocking calls refuse to run on an event loop (they would block it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise CorralError(f"{call} was called from async code: {instead} instead")


def _aware(when: datetime) -> datetime:
    # A naive datetime is in Django's current time zone (TIME_ZONE without USE_TZ).
    return when if timezone.is_aware(when) else timezone.make_aware(when)
