"""A Django task with what ``django.tasks`` lacks: attempts, backoff and a timeout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from corral.contrib.django._compat import Task
from corral.errors import ConfigurationError, ValidationError
from corral.options import DEFAULT_COMPLETED, DEFAULT_FAILED, TaskConfig
from corral.policy import BackoffSpec

__all__ = ["CorralTask", "corral_task"]

T = TypeVar("T")

if TYPE_CHECKING:
    _TaskBase: TypeAlias = Task[Any, Any]
else:  # Django 6's Task is not generic
    _TaskBase = Task


@dataclass(frozen=True, slots=True, kw_only=True)
class CorralTask(_TaskBase):
    """A ``django.tasks`` Task that also says how Corral retries and bounds it.

    ``attempts`` counts the first run (None: the backend's ``OPTIONS``, else 1, which
    is Django's own behaviour: no retry); ``backoff`` is Corral's (``"exponential"``,
    ``"fixed"``, seconds, a :class:`corral.Backoff` or a callable ``(retry, error) ->
    seconds``); ``timeout`` is seconds (or a timedelta) per attempt. On another
    backend (a test's DummyBackend) these fields are simply ignored.
    """

    attempts: int | None = None
    backoff: BackoffSpec | None = None
    timeout: float | timedelta | None = None

    def __post_init__(self) -> None:
        Task.__post_init__(self)  # the backend's validate_task (no zero-arg super: slots)
        try:
            TaskConfig.build(
                self.module_path,
                queue="default",
                priority=0,
                attempts=1 if self.attempts is None else self.attempts,
                backoff="exponential" if self.backoff is None else self.backoff,
                timeout=self.timeout,
                completed=DEFAULT_COMPLETED,
                failed=DEFAULT_FAILED,
            )
        except (ConfigurationError, ValidationError) as exc:
            raise ConfigurationError(f"Django task: {exc}") from None

    def using(
        self,
        *,
        priority: int | None = None,
        queue_name: str | None = None,
        run_after: datetime | None = None,
        backend: str | None = None,
        attempts: int | None = None,
        backoff: BackoffSpec | None = None,
        timeout: float | timedelta | None = None,
    ) -> CorralTask:
        """This task with other defaults: Django's four, plus attempts, backoff, timeout."""
        task: CorralTask = Task.using(
            self, priority=priority, queue_name=queue_name, run_after=run_after, backend=backend
        )
        changes: dict[str, Any] = {
            name: value
            for name, value in (("attempts", attempts), ("backoff", backoff), ("timeout", timeout))
            if value is not None
        }
        return replace(task, **changes) if changes else task


def corral_task(
    function: Callable[..., Any] | None = None,
    *,
    priority: int = 0,
    queue_name: str = "default",
    backend: str = "default",
    takes_context: bool = False,
    attempts: int | None = None,
    backoff: BackoffSpec | None = None,
    timeout: float | timedelta | None = None,
) -> Any:
    """``django.tasks.task`` with ``attempts``, ``backoff`` and ``timeout``:

    >>> @corral_task(attempts=5, backoff="exponential", timeout=30)
    ... def import_csv(upload_id: int) -> int: ...
    >>> import_csv.enqueue(42)

    Works bare (``@corral_task``) too. The result is a :class:`CorralTask`, a
    ``django.tasks`` Task in every other respect (``enqueue``, ``using``, ...).
    """

    def wrap(fn: Callable[..., Any]) -> CorralTask:
        return CorralTask(
            func=fn,
            priority=priority,
            queue_name=queue_name,
            backend=backend,
            takes_context=takes_context,
            run_after=None,
            attempts=attempts,
            backoff=backoff,
            timeout=timeout,
        )

    return wrap(function) if function is not None else wrap
