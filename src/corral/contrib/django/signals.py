"""``task_started`` and ``task_finished``, sent by the worker that runs the job."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from corral.contrib.django._compat import (
    TASKS_MODULE,
    TaskResultStatus,
    task_finished,
    task_started,
)
from corral.hooks import JobEvent, Lifecycle

if TYPE_CHECKING:
    from corral.contrib.django.binding import Binding

__all__ = ["DjangoSignals", "quiet_empty_exc_info"]

log = logging.getLogger("corral.django")


class DjangoSignals(Lifecycle):
    """A Corral listener that sends Django's signals for the jobs of Django tasks:
    ``task_started`` when an attempt starts (status RUNNING), ``task_finished`` when
    the job completed, failed for good or was cancelled. Receivers run through
    ``Signal.asend`` (sync ones in a thread, so they may use the ORM); like every
    listener, one that raises or takes over ``timeout`` is logged, never failing the
    job."""

    name = "django-signals"
    timeout = 30.0

    def __init__(self, binding: Callable[[], Binding]) -> None:
        self._binding = binding

    async def _send(self, signal: Any, event: JobEvent, status: Any = None) -> None:
        from corral.contrib.django.backend import CorralBackend

        binding = self._binding()
        if event.task not in binding.tasks or not signal.has_listeners(CorralBackend):
            return  # a Corral task of the same app, or no one to tell: no store read

        result = await binding.result(event.job_id, event.queue, status)
        await signal.asend(sender=CorralBackend, task_result=result)

    async def started(self, event: JobEvent) -> None:
        await self._send(task_started, event, TaskResultStatus.RUNNING)

    async def completed(self, event: JobEvent) -> None:
        await self._send(task_finished, event)

    async def failed(self, event: JobEvent) -> None:
        await self._send(task_finished, event)

    async def cancelled(self, event: JobEvent) -> None:
        await self._send(task_finished, event)


class _NoEmptyExcInfo(logging.Filter):
    """Django logs a failed task with ``logger.exception`` (for error trackers), from
    inside the ``except`` of its own workers. Corral's worker sends ``task_finished``
    from the recorded outcome, where no exception is being handled, and the log line
    would end in a meaningless ``NoneType: None``: the empty exc_info is dropped (the
    line stays at ERROR; the job's errors hold the traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is not None and record.exc_info[0] is None:
            record.exc_info = None
        return True


_QUIET = _NoEmptyExcInfo()


def quiet_empty_exc_info() -> None:
    """Install the filter on the tasks framework's logger (once)."""
    logger = logging.getLogger(TASKS_MODULE)
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)
