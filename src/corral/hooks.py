"""Lifecycle hooks: the one seam through which Corral tells others about its jobs.

The process that enqueues a job emits ``enqueued``; a worker emits an event when a job starts, reports progress, is retried, completes,
fails for good, is cancelled or stalls (its lease ran out); every listener registered
with :meth:`Corral.add_listener` hears it. The worker knows no listener by name: the
user callbacks (``@app.on_failed``, ``@app.task(on_completed=...)``) are one listener
among others. Listeners are best-effort and run in process: one that raises or takes
longer than its ``timeout`` is logged and abandoned, never failing the job or the
worker; a worker that dies between a job's completion and the callback skips it.

>>> class Metrics(Lifecycle):
...     async def completed(self, event: JobEvent) -> None:
...         counter.inc(event.task)
>>> app.add_listener(Metrics())
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from corral.errors import ConfigurationError, error_summary

if TYPE_CHECKING:
    import asyncio

    from corral.backends.base import Backend
    from corral.context import JobContext

__all__ = [
    "EVENTS",
    "Callback",
    "EventName",
    "JobEvent",
    "Lifecycle",
    "check_callback",
    "check_worker_hook",
]

EventName = Literal[
    "enqueued", "started", "progress", "retrying", "completed", "failed", "cancelled", "stalled"
]
#: Every event, in the order a job can meet them (``enqueued`` is heard by the process
#: that enqueues, the others by the worker).
EVENTS: Final = (
    "enqueued",
    "started",
    "progress",
    "retrying",
    "completed",
    "failed",
    "cancelled",
    "stalled",
)
#: The events a user callback can be registered for (``on_<event>``).
CALLBACK_EVENTS: Final = ("started", "retrying", "completed", "failed", "cancelled", "stalled")

#: A user callback: ``fn(event)``, plain (run in a thread) or async.
Callback = Callable[["JobEvent"], Any]
C = TypeVar("C", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class JobEvent:
    """Something that happened to a job, as a listener or callback sees it.

    ``result`` is the task's return value (``completed``); ``error`` the stored error
    record (``type``, ``message``, ``traceback``, ``attempt``...) of ``retrying``,
    ``failed``, ``cancelled`` and ``stalled``; ``progress`` the value just stored;
    ``retry_in`` the seconds until the next attempt. ``ctx`` is the job's context
    (its ``worker_state`` too), None for a job found stalled by another worker.
    """

    event: EventName
    job_id: str
    queue: str
    task: str
    attempt: int
    worker: str
    result: Any = None
    error: dict[str, Any] | None = None
    progress: Any = None
    retry_in: float | None = None
    ctx: JobContext | None = None

    @property
    def error_message(self) -> str:
        """``Type: message`` of the error, or "" when there is none."""
        return error_summary(self.error)


class Lifecycle:
    """Base class of a listener: override the events you want (all async); an event
    not overridden costs the worker nothing.

    ``timeout`` bounds each call in seconds (then it is cancelled and logged);
    ``name`` names the listener in logs (default: the class name). A listener with
    work of its own overrides :meth:`serve`; ``queues`` are queues every worker of
    the app then also serves (the notification deliveries' ``corral.notify``).
    """

    timeout: float = 10.0
    name: str = ""
    queues: tuple[str, ...] = ()

    async def serve(self, backend: Backend, queues: Sequence[str], closing: asyncio.Event) -> None:
        """Run beside the worker's own loops until ``closing`` is set (restarted if it
        raises); ``queues`` are the queues the worker serves. Nothing by default."""

    async def enqueued(self, event: JobEvent) -> None:
        """A job was stored by this process (``attempt`` is 0, ``worker`` "")."""

    async def started(self, event: JobEvent) -> None:
        """A job's attempt started running."""

    async def progress(self, event: JobEvent) -> None:
        """A running job stored progress (``event.progress``)."""

    async def retrying(self, event: JobEvent) -> None:
        """An attempt failed and the job will run again in ``event.retry_in`` seconds."""

    async def completed(self, event: JobEvent) -> None:
        """A job completed with ``event.result`` (its completion is recorded)."""

    async def failed(self, event: JobEvent) -> None:
        """A job failed for good (its last attempt, or an error never retried)."""

    async def cancelled(self, event: JobEvent) -> None:
        """A running job was cancelled."""

    async def stalled(self, event: JobEvent) -> None:
        """A job's lease ran out (its worker died or hung); it runs again."""


def overrides(listener: Lifecycle, method: str) -> bool:
    """True if ``listener``'s class defines its own ``method`` (an event or serve)."""
    return getattr(type(listener), method) is not getattr(Lifecycle, method)


def listener_name(listener: object) -> str:
    """How logs and errors name a listener (its ``name`` or class) or a function."""
    if isinstance(listener, Lifecycle):
        return listener.name or type(listener).__name__
    name = getattr(listener, "__qualname__", None) or repr(listener)
    return str(name).replace("<locals>.", "")


def accepts(fn: Callable[..., Any], count: int) -> bool:
    """True if ``fn`` can be called with ``count`` positional arguments."""
    try:
        inspect.signature(fn).bind(*([None] * count))
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): take it on trust
        return True
    return True


def check_callback(fn: C, what: str) -> C:
    """``fn`` if it can be called with one event; else a ConfigurationError naming it."""
    if not callable(fn):
        raise ConfigurationError(f"{what} must be a function, got {type(fn).__name__}: {fn!r}")
    if not accepts(fn, 1):
        raise ConfigurationError(
            f"{what} callback {listener_name(fn)!r} must take exactly one argument (the "
            f"JobEvent), its signature is {inspect.signature(fn)}"
        )
    return fn


def check_worker_hook(fn: C, what: str) -> C:
    """``fn`` if it takes no argument or one (the worker's state dict)."""
    if not callable(fn):
        raise ConfigurationError(f"{what} must be a function, got {type(fn).__name__}: {fn!r}")
    if not (accepts(fn, 1) or accepts(fn, 0)):
        raise ConfigurationError(
            f"{what} hook {listener_name(fn)!r} must take no argument or one (the "
            f"worker's state dict), its signature is {inspect.signature(fn)}"
        )
    return fn


def check_listener(listener: object) -> Lifecycle:
    """``listener`` if it is a :class:`Lifecycle` with a usable timeout."""
    if not isinstance(listener, Lifecycle):
        raise ConfigurationError(
            f"a listener must be an instance of a corral.hooks.Lifecycle subclass, got "
            f"{type(listener).__name__}: {listener!r}"
        )
    timeout = listener.timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigurationError(
            f"listener {listener_name(listener)!r}: timeout must be seconds > 0, got {timeout!r}"
        )
    for event in (*EVENTS, "serve"):
        if not inspect.iscoroutinefunction(getattr(listener, event)):
            raise ConfigurationError(
                f"listener {listener_name(listener)!r}: {event}() must be an async method"
            )
    return listener
