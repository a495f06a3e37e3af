"""The app's side of the lifecycle hooks: listeners, user callbacks, worker hooks.

:class:`HookRegistry` is mixed into :class:`~corral.app.Corral`. User callbacks
(app-wide ``@app.on_failed``, per task ``@app.task(on_failed=...)``) are served by
one built-in listener, :class:`Callbacks`, registered like any other.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from corral.errors import ConfigurationError
from corral.hooks import (
    CALLBACK_EVENTS,
    Callback,
    JobEvent,
    Lifecycle,
    check_callback,
    check_listener,
    check_worker_hook,
    listener_name,
    overrides,
)

if TYPE_CHECKING:
    from corral.context import JobContext
    from corral.task import Task
    from corral.worker.dispatch import Dispatcher
    from corral.worker.threads import JobThreads

__all__ = ["AroundTask", "Callbacks", "HookRegistry", "call_hook", "task_callbacks"]

log = logging.getLogger("corral.hooks")

#: Seconds a user callback may take before it is abandoned (and logged).
DEFAULT_CALLBACK_TIMEOUT = 10.0

WorkerHook = Callable[..., Any]
#: ``factory(ctx)`` -> a context manager a worker enters around each task call.
AroundTask = Callable[["JobContext"], AbstractContextManager[Any]]


async def call_hook(fn: Callable[..., Any], args: tuple[Any, ...], threads: JobThreads) -> Any:
    """Call a plain (in one of ``threads``) or async function and return its result."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    call_context = contextvars.copy_context()
    value = await asyncio.wrap_future(threads.submit(lambda: call_context.run(fn, *args)))
    if inspect.isawaitable(value):  # a plain function that returned a coroutine
        value = await value
    return value


def task_callbacks(options: Mapping[str, Callback | None]) -> dict[str, Callback]:
    """The ``on_<event>`` options of ``@app.task``, checked; unset ones left out."""
    chosen: dict[str, Callback] = {}
    for key, fn in options.items():
        if fn is not None:
            chosen[key.removeprefix("on_")] = check_callback(fn, key)
    return chosen


class Callbacks(Lifecycle):
    """The listener that runs user callbacks: the app's, then the task's, at once."""

    name = "callbacks"

    def __init__(self, registry: HookRegistry) -> None:
        self._registry = registry
        self._threads: JobThreads | None = None  # started at the first plain callback
        self.timeout = registry.callback_timeout + 1.0  # each callback has its own bound

    def wanted(self) -> bool:
        return bool(self._registry._callbacks) or any(
            task.callbacks for task in self._registry.tasks.values()
        )

    async def _run(self, event: JobEvent) -> None:
        fns = list(self._registry._callbacks.get(event.event, ()))
        task = self._registry.tasks.get(event.task)
        if task is not None and event.event in task.callbacks:
            fns.append(task.callbacks[event.event])
        if fns:
            await asyncio.gather(*(self._one(fn, event) for fn in fns))

    async def _one(self, fn: Callback, event: JobEvent) -> None:
        limit = self._registry.callback_timeout
        if self._threads is None:
            from corral.worker.threads import JobThreads

            self._threads = JobThreads("corral-callback")
        try:
            async with asyncio.timeout(limit):
                await call_hook(fn, (event,), self._threads)
        except TimeoutError:
            log.error(
                "on_%s callback %s of job %s took longer than %gs; abandoned",
                event.event,
                listener_name(fn),
                event.job_id,
                limit,
            )
        except Exception:
            log.exception(
                "on_%s callback %s of job %s failed", event.event, listener_name(fn), event.job_id
            )

    started = retrying = completed = failed = cancelled = stalled = _run


class HookRegistry:
    """Listeners, callbacks and worker hooks registered on an app."""

    tasks: dict[str, Task[Any, Any]]
    #: Seconds a user callback may run before it is abandoned and logged.
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT

    def _init_hooks(self) -> None:
        self._listeners: list[Lifecycle] = []
        self._callbacks: dict[str, list[Callback]] = {}
        self._startup: list[WorkerHook] = []
        self._shutdown: list[WorkerHook] = []
        self._callback_listener = Callbacks(self)
        self._enqueue_hooks: Dispatcher | None = None
        self._around: tuple[AroundTask, ...] = ()

    def _producer_hooks(self) -> Dispatcher | None:
        """The listeners of ``enqueued`` (None when there is none: nothing to build)."""
        hearing = [each for each in self._listeners if overrides(each, "enqueued")]
        if not hearing:
            return None
        if self._enqueue_hooks is None or self._enqueue_hooks.listeners != hearing:
            from corral.worker.dispatch import Dispatcher

            self._enqueue_hooks = Dispatcher(hearing)
        return self._enqueue_hooks

    @property
    def listeners(self) -> list[Lifecycle]:
        """The listeners a worker of this app calls (the callbacks' one if any)."""
        extra = [self._callback_listener] if self._callback_listener.wanted() else []
        return [*self._listeners, *extra]

    @property
    def startup_hooks(self) -> list[WorkerHook]:
        """Functions run once per worker before its first claim."""
        return list(self._startup)

    @property
    def shutdown_hooks(self) -> list[WorkerHook]:
        """Functions run once per worker after its last job."""
        return list(self._shutdown)

    @property
    def around(self) -> tuple[AroundTask, ...]:
        """The context factories workers enter around each task call, in order."""
        return self._around

    def around_tasks(self, factory: AroundTask) -> AroundTask:
        """Decorator: ``factory(ctx)`` returns a context manager that every worker of
        this app enters around each task call, where the call runs: in the thread of a
        plain function, in the job's own asyncio task around an async one (a web
        framework's app context, per-job connection cleanup). Entered in registration
        order; an error entering or leaving it fails the attempt like the task's own."""
        if not callable(factory):
            raise ConfigurationError(
                f"around_tasks takes a function of the job's context, got "
                f"{type(factory).__name__}: {factory!r}"
            )
        self._around = (*self._around, factory)
        return factory

    def add_listener(self, listener: Lifecycle) -> Lifecycle:
        """Register a :class:`~corral.hooks.Lifecycle` listener with every worker of
        this app; raises ConfigurationError for anything else."""
        self._listeners.append(check_listener(listener))
        return listener

    def remove_listener(self, listener: Lifecycle) -> None:
        """Unregister a listener added with :meth:`add_listener` (workers started from
        now on no longer call it); a listener not registered is ignored."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _add_callback(self, event: str, fn: Callback) -> Callback:
        check_callback(fn, f"on_{event}")
        self._callbacks.setdefault(event, []).append(fn)
        return fn

    def on_started(self, fn: Callback) -> Callback:
        """Decorator: ``fn(event)`` when any job's attempt starts."""
        return self._add_callback("started", fn)

    def on_retrying(self, fn: Callback) -> Callback:
        """Decorator: ``fn(event)`` when an attempt failed and the job will retry."""
        return self._add_callback("retrying", fn)

    def on_completed(self, fn: Callback) -> Callback:
        """Decorator: ``fn(event)`` once a job's completion is recorded
        (``event.result``). Best-effort: a worker crash in between skips it."""
        return self._add_callback("completed", fn)

    def on_failed(self, fn: Callback) -> Callback:
        """Decorator: ``fn(event)`` once a job failed for good (``event.error``)."""
        return self._add_callback("failed", fn)

    def on_cancelled(self, fn: Callback) -> Callback:
        """Decorator: ``fn(event)`` when a running job was cancelled."""
        return self._add_callback("cancelled", fn)

    def on_stalled(self, fn: Callback) -> Callback:
        """Decorator: ``fn(event)`` when a job's lease ran out (it runs again)."""
        return self._add_callback("stalled", fn)

    def on_startup(self, fn: WorkerHook) -> WorkerHook:
        """Decorator: run ``fn(state)`` (or ``fn()``), plain or async, once per worker
        before its first claim. ``state`` is the worker's dict, seen by tasks as
        ``ctx.worker_state``; a returned dict is merged into it. One that raises stops
        the worker before it claims anything."""
        self._startup.append(check_worker_hook(fn, "on_startup"))
        return fn

    def on_shutdown(self, fn: WorkerHook) -> WorkerHook:
        """Decorator: run ``fn(state)`` (or ``fn()``) once per worker after its last
        job (one that raises is logged)."""
        self._shutdown.append(check_worker_hook(fn, "on_shutdown"))
        return fn


assert set(CALLBACK_EVENTS) <= set(vars(Callbacks))
