"""Tasks: registered functions, and how their jobs are enqueued."""

from __future__ import annotations

import copy
import inspect
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from corral._sync import run_sync
from corral.backends.base import JobRecord, JobState, NewJob
from corral.context import JobContext
from corral.errors import ConfigurationError, InvalidArguments, ValidationError
from corral.job import Job
from corral.notify.registry import check_targets
from corral.options import JobOptions, TaskConfig
from corral.serialization import encode_call

if TYPE_CHECKING:
    from corral.app import Corral
    from corral.notify.base import Target

__all__ = ["Call", "Task"]

P = ParamSpec("P")
R = TypeVar("R")


def _wants_context(fn: Callable[..., Any]) -> bool:
    """True when the first parameter is annotated ``JobContext``."""
    params = list(inspect.signature(fn).parameters.values())
    if not params:
        return False
    annotation = params[0].annotation
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] == "JobContext"
    return annotation is JobContext


@dataclass(frozen=True, slots=True)
class Call:
    """One job to enqueue in bulk: a task (with its options) and its arguments."""

    task: Task[Any, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class Task(Generic[P, R]):
    """A registered function. ``enqueue(...)`` takes exactly the function's
    arguments; job options go through :meth:`options` so the two never clash."""

    def __init__(
        self,
        app: Corral,
        fn: Callable[..., Any],
        config: TaskConfig,
        options: JobOptions | None = None,
        *,
        callbacks: dict[str, Callable[..., Any]] | None = None,
        targets: tuple[Target, ...] = (),
    ) -> None:
        self.app = app
        #: Where notifications about this task's jobs go (besides the app's).
        self.targets = targets
        #: This task's own lifecycle callbacks, by event name (``"failed"``...).
        self.callbacks = callbacks or {}
        self.fn = fn
        self.config = config
        self.name = config.name
        self.is_async = inspect.iscoroutinefunction(fn)
        #: Calling fn binds its arguments and runs nothing yet (a plain ``async def``,
        #: not a wrapper whose signature may differ from the one it shows).
        self.binds_on_call = (
            self.is_async and inspect.isfunction(fn) and not hasattr(fn, "__wrapped__")
        )
        self.wants_context = _wants_context(fn)
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        if self.wants_context:
            params = params[1:]
        self.signature = signature.replace(parameters=params)
        self.param_names = [
            p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        #: When every parameter is a plain required one, a call with exactly that many
        #: positional arguments fits without Signature.bind (the common bulk case).
        plain = all(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params)
        self._arity = len(params) if plain else -1
        self._options = options or JobOptions()
        # What every job of this task with these options stores alike (_template()).
        self._stored: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue}>"

    @property
    def queue(self) -> str:
        """The queue this task's jobs go to (after options)."""
        return self._options.queue or self.config.queue

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function directly, in this process (no job)."""
        if self.wants_context:
            raise ValidationError(f"task {self.name!r} needs a JobContext; enqueue it instead")
        result: R = self.fn(*args, **kwargs)
        return result

    def options(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: Any = None,
        attempts: int | None = None,
        backoff: Any = None,
        timeout: Any = None,
        job_id: str | None = None,
        group: str | None = None,
        dedupe_key: str | None = None,
        dedupe_window: Any = None,
        debounce: Any = None,
        notify: Target | Sequence[Target] | None = None,
    ) -> Task[P, R]:
        """This task with per-job overrides, e.g. ``task.options(delay=60).enqueue(...)``.

        ``delay`` is seconds, a timedelta or an aware datetime; ``priority`` an int in
        [-1000, 1000] (higher runs first); ``job_id`` makes the enqueue idempotent: a
        second enqueue with the same id returns the existing job.

        ``group`` (a tenant, e.g. ``"restaurant-42"``): groups with waiting jobs take
        turns, so one group's backlog cannot hold up another's jobs. ``dedupe_key``:
        while the job holding the key is unfinished (or, with ``dedupe_window``
        seconds, for that long after its add), an enqueue with the same key returns
        that job. ``debounce`` seconds (with a key): the job starts that long after
        the *last* enqueue with its key; each one replaces its arguments.

        ``notify``: targets (:class:`~corral.notify.Webhook`, :class:`~corral.notify.Email`)
        for this job's outcomes, besides the task's and the app's (they are stored
        with the job, secrets included).
        """
        given = (queue, priority, delay, attempts, backoff, timeout, job_id, group)
        if notify is None and all(v is None for v in (*given, dedupe_key, dedupe_window, debounce)):
            return self  # nothing to override (the common case of an HTTP enqueue)
        targets = check_targets(notify, "notify")
        if targets and self.app.notifications is None:
            raise ConfigurationError(
                "notify=: notifications are not set up on this app, so no worker would "
                "deliver them; pass Corral(notifications=NotifySettings()) or register "
                "app-wide or task targets"
            )
        overrides = JobOptions(
            queue=queue,
            priority=priority,
            delay=delay,
            attempts=attempts,
            backoff=backoff,
            timeout=timeout,
            job_id=job_id,
            group=group,
            dedupe_key=dedupe_key,
            dedupe_window=dedupe_window,
            debounce=debounce,
            notify=targets or None,
        )
        # A copy, not Task(...): the signature work of __init__ is the same for every
        # option set, and an enqueue over HTTP pays for options() on every request.
        derived = copy.copy(self)
        derived._options = self._options.merged(overrides)
        derived._stored = None
        return derived

    def call(self, *args: P.args, **kwargs: P.kwargs) -> Call:
        """A job description for :meth:`enqueue_many` / ``Corral.enqueue_many``."""
        return Call(self, args, kwargs)

    def prepare(self, args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[str, NewJob]:
        """Validate and encode one job: (queue, NewJob)."""
        if kwargs or len(args) != self._arity:
            try:
                self.signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise InvalidArguments(f"task {self.name!r}: {exc}") from None
        opts = self._options
        data = encode_call(self.name, args, kwargs, self.app.max_payload_bytes, self.param_names)
        return self.queue, NewJob(
            id=opts.job_id or new_job_id(),
            data=data,
            notify=self.app.notify_events(self, opts.notify or ()),
            **(self._stored or self._template()),
        )

    def _template(self) -> dict[str, Any]:
        """The NewJob fields that come from the task and its options alone, checked and
        encoded once (a bulk enqueue prepares thousands of jobs of one task)."""
        opts = self._options
        opts.check_dedupe()
        delay_ms, run_at_ms = opts.delay_ms()
        self._stored = {
            "name": self.name,
            "priority": self.config.priority if opts.priority is None else opts.priority,
            "delay_ms": delay_ms,
            "run_at_ms": run_at_ms,
            "options": opts.stored(),
            "given_id": bool(opts.job_id),
            **opts.dedupe_fields(),
        }
        return self._stored

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue one job; arguments are checked against the function's signature
        and must be JSON-serialisable."""
        queue, new = self.prepare(args, kwargs)
        return (await self.app.submit(queue, [new]))[0]

    def enqueue_sync(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Blocking twin of :meth:`enqueue` (for Flask, Django, scripts)."""
        return run_sync(self.enqueue(*args, **kwargs))

    async def enqueue_many(self, items: Iterable[Call | Sequence[Any]]) -> list[Job]:
        """Enqueue many jobs in few round trips. Each item is a ``task.call(...)`` or
        a sequence of positional arguments. Validation happens before anything is
        stored, so one bad item enqueues nothing."""
        calls = [item if isinstance(item, Call) else Call(self, tuple(item), {}) for item in items]
        return await self.app.enqueue_many(calls)

    def enqueue_many_sync(self, items: Iterable[Call | Sequence[Any]]) -> list[Job]:
        """Blocking twin of :meth:`enqueue_many`."""
        return run_sync(self.enqueue_many(items))


def new_job_id() -> str:
    """104 random bits as 26 hex digits. Shorter than a UUID's 32 because a waiting
    job's id is stored twice (its key and its place in line), and 2^-104 per pair
    keeps collisions out of reach."""
    return os.urandom(13).hex()


def new_record(queue: str, new: NewJob, stored_at_ms: int | None = None) -> JobRecord:
    """What a just-created job looks like, without reading it back; with
    ``stored_at_ms`` (the store's clock when it created the job) its ``created_at``
    and ``run_at`` are the stored ones (as add_job.lua sets them)."""
    if stored_at_ms is None:
        delayed = new.delay_ms > 0 or new.debounce_ms > 0 or new.run_at_ms > time.time() * 1000
        run_at = None
    else:
        delay, at = (new.debounce_ms, 0) if new.debounce_ms else (new.delay_ms, new.run_at_ms)
        due = at if at > 0 else stored_at_ms + delay if delay > 0 else 0
        delayed = due > stored_at_ms
        run_at = due if delayed else None
    return JobRecord(
        id=new.id,
        queue=queue,
        name=new.name,
        state=JobState.DELAYED if delayed else JobState.WAITING,
        data=new.data,
        priority=new.priority,
        options=new.options,
        group=new.group or None,
        created_at=stored_at_ms,
        run_at=run_at,
        dedupe_key=new.dedupe_key or None,
    )
