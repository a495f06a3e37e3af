"""One Corral app per ``TASKS`` alias, shared by every thread, and the Django tasks
registered on it.

Django creates task backends per thread (its connection handler), so the app and its
registry live here, not on the backend: a worker's threads, the web process's
request threads and the sync portal all reach the same app and the same tasks.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings
from django.core.signals import setting_changed
from django.db import close_old_connections, reset_queries

from corral._sync import run_sync
from corral.app import Corral
from corral.context import JobContext
from corral.contrib.django._compat import Task, TaskContext, TaskResultStatus, normalize_json
from corral.contrib.django.results import to_result
from corral.errors import ConfigurationError, ValidationError
from corral.options import DEFAULT_COMPLETED, DEFAULT_FAILED, TaskConfig
from corral.policy import BackoffSpec, check_queue_name, check_task_name
from corral.task import Task as CorralTaskHandle

__all__ = ["OPTION_KEYS", "Binding", "binding_for"]

log = logging.getLogger("corral.django")

#: What a Corral backend's ``OPTIONS`` may hold.
OPTION_KEYS = ("url", "app", "prefix", "durable", "attempts", "backoff", "timeout")


@dataclass(eq=False)
class Binding:
    """The Corral app behind one ``TASKS`` alias and the Django tasks it runs (by
    Corral task name: the function's import path)."""

    alias: str
    app: Corral
    attempts: int = 1
    backoff: BackoffSpec = "exponential"
    timeout: float | timedelta | None = None
    tasks: dict[str, Task[Any, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- registration ---------------------------------------------------------------

    def register(self, task: Task[Any, Any]) -> None:
        """Register the Corral task that runs ``task`` (once per function; a ``using()``
        copy of a registered task changes nothing)."""
        name = task.module_path
        with self.lock:
            known = self.tasks.get(name)
            if known is not None and known.func is task.func:
                return
            check_task_name(name)
            check_queue_name(task.queue_name)
            existing = self.app.tasks.get(name)
            if existing is not None and not hasattr(existing.fn, "__django_task__"):
                raise ConfigurationError(
                    f"Django task {name!r}: the Corral app of TASKS[{self.alias!r}] already "
                    "has a task of that name"
                )
            # Ours from an earlier binding of a shared app, or a reloaded module's.
            self.app.tasks.pop(name, None)
            attempts = getattr(task, "attempts", None)
            backoff = getattr(task, "backoff", None)
            timeout = getattr(task, "timeout", None)
            self.app.task(
                name=name,
                queue=task.queue_name,
                attempts=self.attempts if attempts is None else attempts,
                backoff=self.backoff if backoff is None else backoff,
                timeout=self.timeout if timeout is None else timeout,
            )(_runner(self, task))
            self.tasks[name] = task

    def django_task(self, name: str) -> Task[Any, Any] | None:
        """The Django task behind Corral task ``name``, importing its module if no
        module imported so far defined it; None when it is not one of ours."""
        task = self.tasks.get(name)
        if task is not None:
            return task
        module_name, _, attribute = name.rpartition(".")
        if not module_name or not _importable(module_name):
            return None
        try:
            module = sys.modules.get(module_name) or importlib.import_module(module_name)
        except ImportError:
            log.warning("task %r: module %r cannot be imported", name, module_name)
            return None
        found = getattr(module, attribute, None)
        if not isinstance(found, Task) or found.backend != self.alias:
            return self.tasks.get(name)
        self.register(found)  # imported before this binding existed
        return found

    def resolve(self, name: str) -> CorralTaskHandle[Any, Any] | None:
        """A worker's resolver (``Corral.task_resolvers``): the Corral task of a Django
        task no module imported so far has defined."""
        return self.app.tasks.get(name) if self.django_task(name) is not None else None

    # -- reads ----------------------------------------------------------------------

    async def result(self, job_id: str, queue: str | None = None, status: Any = None) -> Any:
        """The TaskResult of job ``job_id`` (raises JobNotFound, ValidationError, or
        LookupError when it is not a Django task of this alias)."""
        job = await self.app.get_job(job_id, queue)
        task = self.django_task(job.name)
        if task is None:
            raise LookupError(
                f"job {job_id!r} runs {job.name!r}, which is not a Django task of "
                f"TASKS[{self.alias!r}]"
            )
        return to_result(task, job, self.alias, status)


def _importable(module: str) -> bool:
    """Only modules of the project (its installed apps, its settings' package) are
    imported on behalf of a stored job's task name."""
    roots = {config.name.partition(".")[0] for config in apps.get_app_configs()}
    roots.add(str(getattr(settings, "SETTINGS_MODULE", "") or "").partition(".")[0])
    return module.partition(".")[0] in roots


def _runner(binding: Binding, task: Task[Any, Any]) -> Callable[..., Any]:
    """The function Corral runs for ``task``: the Django function between two
    ``close_old_connections()``, as Django's request cycle does (a connection broken
    or past CONN_MAX_AGE is closed, not reused); sync functions run in the worker's
    threads, each with its own connections."""
    func = task.func
    takes_context = task.takes_context
    signature = inspect.signature(func)
    params = list(signature.parameters.values())[1 if takes_context else 0 :]
    ctx_param = inspect.Parameter(
        "_corral_ctx", inspect.Parameter.POSITIONAL_ONLY, annotation=JobContext
    )

    if inspect.iscoroutinefunction(func):

        async def run_async(ctx: JobContext, *args: Any, **kwargs: Any) -> Any:
            await sync_to_async(_job_starts)()
            try:
                if takes_context:
                    result = await binding.result(ctx.id, ctx.queue, TaskResultStatus.RUNNING)
                    args = (TaskContext(task_result=result), *args)
                return _normalized(await func(*args, **kwargs))
            finally:
                await sync_to_async(close_old_connections)()

        run: Callable[..., Any] = run_async
    else:

        def run_sync_task(ctx: JobContext, *args: Any, **kwargs: Any) -> Any:
            _job_starts()
            try:
                if takes_context:
                    coro = binding.result(ctx.id, ctx.queue, TaskResultStatus.RUNNING)
                    args = (TaskContext(task_result=run_sync(coro)), *args)
                return _normalized(func(*args, **kwargs))
            finally:
                close_old_connections()

        run = run_sync_task
    # Corral checks arguments against this signature (the Django function's, after
    # the job context); __wrapped__ tells it calling run does not bind them.
    run.__signature__ = signature.replace(parameters=[ctx_param, *params])  # type: ignore[attr-defined]
    run.__wrapped__ = func  # type: ignore[attr-defined]
    run.__django_task__ = task  # type: ignore[attr-defined]  # (what register() looks for)
    run.__module__, run.__qualname__ = func.__module__, func.__qualname__
    return run


def _job_starts() -> None:
    """What Django's ``request_started`` does: forget the queries DEBUG logged (a
    worker thread would otherwise keep every query of every job) and close the
    connections that are broken or too old."""
    reset_queries()
    close_old_connections()


def _normalized(value: Any) -> Any:
    """The return value as Django stores it (tuples as lists...); what JSON cannot hold
    is left for Corral to refuse with its precise message."""
    try:
        return normalize_json(value)
    except (TypeError, ValueError):
        return value


# -- one binding per alias ----------------------------------------------------------

_bindings: dict[tuple[str, str], Binding] = {}
_bindings_lock = threading.Lock()


def binding_for(alias: str, options: dict[str, Any]) -> Binding:
    """The binding of ``alias`` with these ``OPTIONS`` (made once, shared by threads);
    raises ConfigurationError naming what is wrong with them."""
    key = (alias, repr(sorted(options.items())))
    with _bindings_lock:
        found = _bindings.get(key)
        if found is None:
            found = _bindings[key] = _make_binding(alias, options)
        return found


def _make_binding(alias: str, options: dict[str, Any]) -> Binding:
    where = f"TASKS[{alias!r}]['OPTIONS']"
    if not isinstance(options, dict):
        raise ConfigurationError(f"{where} must be a dict, got {type(options).__name__}")
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown option {', '.join(map(repr, unknown))}; use {', '.join(OPTION_KEYS)}"
        )
    if "app" in options:
        own = sorted({"url", "prefix", "durable"} & set(options))
        if own:
            raise ConfigurationError(
                f"{where}: give 'app' or {', '.join(map(repr, own))}, not both (the app "
                "has its own)"
            )
        from corral.cli.loader import load_app

        app = load_app(str(options["app"]))
    else:
        try:
            app = Corral(
                options.get("url"),
                prefix=options.get("prefix", "corral"),
                durable=bool(options.get("durable", False)),
            )
        except (ConfigurationError, ValidationError) as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
    binding = Binding(
        alias,
        app,
        attempts=options.get("attempts", 1),
        backoff=options.get("backoff", "exponential"),
        timeout=options.get("timeout"),
    )
    try:
        TaskConfig.build(
            "defaults",
            queue="default",
            priority=0,
            attempts=binding.attempts,
            backoff=binding.backoff,
            timeout=binding.timeout,
            completed=DEFAULT_COMPLETED,
            failed=DEFAULT_FAILED,
        )
    except ConfigurationError as exc:
        detail = str(exc).removeprefix("task 'defaults': ")
        raise ConfigurationError(f"{where}: {detail}") from None
    _hook(app, binding)
    return binding


#: The bindings each app serves, by alias: an app given by path outlives a binding
#: when TASKS changes (tests), and its resolver and listener, installed once, follow
#: the newest binding of their alias.
_hooked: weakref.WeakKeyDictionary[Corral, dict[str, Binding]] = weakref.WeakKeyDictionary()


def _hook(app: Corral, binding: Binding) -> None:
    from corral.contrib.django.signals import DjangoSignals

    current = _hooked.setdefault(app, {})
    first = binding.alias not in current
    current[binding.alias] = binding
    if first:
        alias = binding.alias
        app.task_resolvers.append(lambda name: current[alias].resolve(name))
        app.add_listener(DjangoSignals(lambda: current[alias]))


def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == "TASKS":
        with _bindings_lock:
            _bindings.clear()


setting_changed.connect(_forget, dispatch_uid="corral.contrib.django.bindings")
