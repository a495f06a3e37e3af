"""The app object: task registry, backend connection and the client entry points."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from datetime import timedelta
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, overload
from urllib.parse import urlsplit

from corral._sync import run_sync
from corral.audit import DEFAULT_AUDIT_RETENTION, AuditLog, audit_retention_ms
from corral.backends.base import Backend, NewJob, QueueOverview, Retention, WorkerInfo
from corral.callbacks import HookRegistry, task_callbacks
from corral.context import JobContext
from corral.errors import ConfigurationError, CorralError, JobNotFound, ValidationError
from corral.feed import EventFeed, Subscription
from corral.flow import Flow, prepare_flow
from corral.flow_run import FlowPage, FlowRun, flow_cursor, parse_flow_cursor
from corral.health import QueueHealth, judge
from corral.history import History, Span, span_window
from corral.hooks import Callback, JobEvent
from corral.job import Job
from corral.notify.base import NotifySettings, Target
from corral.notify.registry import NotifyRegistry, check_targets
from corral.options import DEFAULT_COMPLETED, DEFAULT_FAILED, TaskConfig
from corral.policy import BackoffSpec, check_job_id, check_queue_name, check_task_name
from corral.queue import Queue
from corral.schedules import Schedules, ScheduleSpec
from corral.settings import REDIS_SCHEMES, SQLITE_SCHEMES, resolve_url
from corral.settings import reconnect_timeout as resolve_reconnect_timeout
from corral.task import Call, Task, new_record
from corral.tracing import JobTracing

__all__ = ["Corral"]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_MAX_PAYLOAD = 512 * 1024
DEFAULT_MAX_RESULT = 512 * 1024


class TaskDecorator(Protocol):
    """What ``@app.task(...)`` returns: it keeps the function's signature for
    ``enqueue`` (a leading ``JobContext`` parameter is filled in by the worker)."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[JobContext, P], Coroutine[Any, Any, R]]
    ) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[JobContext, P], R]) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Task[P, R]: ...


class Corral(AuditLog, HookRegistry, NotifyRegistry):
    """A Corral application: tasks plus the backend they share.

    ``url`` picks the backend (else ``CORRAL_URL``, ``REDIS_URL``, then
    ``sqlite:///corral.db``). Creating the app opens no connection; the first call
    that needs the backend connects, once per event loop. ``durable=True`` makes an
    enqueue return only once the job is on disk (Redis: WAITAOF, or ``appendfsync
    always`` before 7.2; SQLite: ``synchronous=FULL``). ``max_payload_bytes`` caps a
    job's encoded arguments (refused at enqueue) and ``max_result_bytes`` a task's
    encoded result (over it, the job fails without retry); both default to 512 KiB.
    ``reconnect_timeout``: seconds a call rides out a lost Redis connection (retrying
    with backoff) before it raises ConnectionFailed (else ``CORRAL_RECONNECT_TIMEOUT``,
    else 5; 0 = fail at once). ``audit_retention`` (a timedelta or seconds): how long
    audit entries are kept (see :mod:`corral.audit`). ``tracing=True``: OpenTelemetry
    spans for enqueues and job attempts (see :meth:`enable_tracing`).

    >>> app = Corral("redis://localhost:6379/0")
    >>> @app.task(queue="emails", attempts=5)
    ... async def send_email(to: str, subject: str) -> None: ...
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "corral",
        default_queue: str = "default",
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
        max_result_bytes: int = DEFAULT_MAX_RESULT,
        completed: Retention = DEFAULT_COMPLETED,
        failed: Retention = DEFAULT_FAILED,
        durable: bool = False,
        reconnect_timeout: float | None = None,
        audit_retention: timedelta | float = DEFAULT_AUDIT_RETENTION,
        tracing: bool = False,
        notifications: NotifySettings | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self.durable = durable
        self.reconnect_timeout = resolve_reconnect_timeout(reconnect_timeout)
        #: How long audit entries are kept.
        self.audit_retention = timedelta(milliseconds=audit_retention_ms(audit_retention))
        for name, limit in (
            ("max_payload_bytes", max_payload_bytes),
            ("max_result_bytes", max_result_bytes),
        ):
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ConfigurationError(f"{name} must be an integer >= 1, got {limit!r}")
        self.prefix = prefix
        self.default_queue = check_queue_name(default_queue)
        self.max_payload_bytes = max_payload_bytes
        #: A task's return value over this many bytes (encoded) fails its job.
        self.max_result_bytes = max_result_bytes
        self.completed = completed
        self.failed = failed
        self.tasks: dict[str, Task[Any, Any]] = {}
        #: Asked, in order, for a task name a worker claimed but no module registered:
        #: one may register the task (e.g. by importing its module) and return it.
        #: corral.contrib.django resolves Django tasks this way.
        self.task_resolvers: list[Callable[[str], Task[Any, Any] | None]] = []
        self._init_hooks()
        self._init_notify(notifications)
        #: Schedules declared with ``@app.task(cron=...)``; workers store them at start.
        self.declared_schedules: list[ScheduleSpec] = []
        #: Schedules created, listed, paused and removed at run time.
        self.schedules = Schedules(self)
        self._backends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Backend] = (
            weakref.WeakKeyDictionary()
        )
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EventFeed] = (
            weakref.WeakKeyDictionary()
        )
        #: The spans of enqueues and attempts (corral.tracing); None: tracing is off.
        self.tracing: JobTracing | None = None
        #: Set by ``corral.testing.inline``: runs each stored batch's jobs before the
        #: enqueue returns. None outside inline mode (the only cost: this check).
        self._run_inline: Callable[[str, list[Job]], Awaitable[None]] | None = None
        if tracing:
            self.enable_tracing()

    def __repr__(self) -> str:
        from corral.settings import mask_url

        return f"<Corral {mask_url(self.url)} tasks={len(self.tasks)}>"

    def enable_tracing(self, tracer_provider: Any = None) -> None:
        """Trace this app's enqueues (PRODUCER spans ``send {queue}``, their context
        stored with each job) and, in its workers, each attempt (CONSUMER spans
        ``process {queue}``, children of the job's context): see :mod:`corral.tracing`.
        ``tracer_provider`` defaults to OpenTelemetry's global one. ConfigurationError
        when ``opentelemetry-api`` is not installed (``pip install 'corral[otel]'``)."""
        self.tracing = JobTracing(tracer_provider)

    # -- tasks ----------------------------------------------------------------------

    def task(
        self,
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        attempts: int = 3,
        backoff: BackoffSpec = "exponential",
        timeout: float | timedelta | None = None,
        completed: Retention | None = None,
        failed: Retention | None = None,
        cron: str | None = None,
        every: float | timedelta | None = None,
        tz: str = "UTC",
        catch_up: bool = False,
        on_started: Callback | None = None,
        on_retrying: Callback | None = None,
        on_completed: Callback | None = None,
        on_failed: Callback | None = None,
        on_cancelled: Callback | None = None,
        notify: Target | Sequence[Target] | None = None,
        isolation: str | None = None,
        memory_limit: int | str | None = None,
        max_tasks_per_child: int | None = None,
    ) -> TaskDecorator:
        """Register a function (async or plain) as a task.

        ``name`` defaults to ``module.function``. ``attempts`` counts the first run
        (3 = up to two retries); ``backoff`` is ``"exponential"`` (1 s, 2 s, 4 s...
        with jitter, capped at an hour), ``"fixed"``, seconds, a ``Backoff`` or a
        callable ``(retry, error) -> seconds``; ``timeout`` is seconds per attempt;
        ``completed``/``failed`` set how many finished jobs to keep and for how long.
        ``cron`` (5 fields or an alias like ``@daily``, evaluated in ``tz``) or ``every``
        (seconds or a timedelta) also schedules the task: workers serving its queue
        enqueue one job per tick (see :mod:`corral.schedules`; ``catch_up`` runs the
        latest missed tick). ``on_completed``, ``on_failed`` (for good), ``on_retrying``,
        ``on_started``, ``on_cancelled``: ``fn(event)`` (plain or async) called by the
        worker for this task's jobs, after the app-wide ones (see :mod:`corral.hooks`).
        ``notify``: targets (:class:`~corral.notify.Webhook`, :class:`~corral.notify.Email`)
        told of this task's jobs' outcomes, durably (see :mod:`corral.notify`).
        ``isolation="process"`` runs the jobs in child processes of the worker (see
        :mod:`corral.worker.isolation`): ``timeout`` then stops them for real,
        ``memory_limit`` (bytes or ``"256MB"``) kills one over that resident size, and
        a child is replaced after ``max_tasks_per_child`` jobs.
        """
        targets = check_targets(notify, "notify")
        callbacks = task_callbacks(
            {
                "on_started": on_started,
                "on_retrying": on_retrying,
                "on_completed": on_completed,
                "on_failed": on_failed,
                "on_cancelled": on_cancelled,
            }
        )

        def register(fn: Callable[..., Any]) -> Task[Any, Any]:
            default = f"{fn.__module__}.{fn.__qualname__}".replace("<locals>.", "")
            task_name = check_task_name(name or default)
            if task_name in self.tasks:
                raise ConfigurationError(f"a task named {task_name!r} is already registered")
            config = TaskConfig.build(
                task_name,
                queue=queue or self.default_queue,
                priority=priority,
                attempts=attempts,
                backoff=backoff,
                timeout=timeout,
                completed=completed or self.completed,
                failed=failed or self.failed,
                isolation=isolation,
                memory_limit=memory_limit,
                max_tasks_per_child=max_tasks_per_child,
            )
            if config.isolation is not None and "<locals>" in fn.__qualname__:
                raise ConfigurationError(
                    f"task {task_name!r}: isolation='process' needs a function its child "
                    f"process can import by module path; {fn.__qualname__} is defined "
                    "inside a function"
                )
            task: Task[Any, Any] = Task(self, fn, config, callbacks=callbacks, targets=targets)
            if targets:
                self._enable_notify()
            if cron is not None or every is not None:
                seconds = every.total_seconds() if isinstance(every, timedelta) else every
                spec = ScheduleSpec(
                    name=task_name,
                    task=task_name,
                    queue=config.queue,
                    cron=cron,
                    every=seconds,
                    tz=tz,
                    catch_up=catch_up,
                )
                try:
                    task.prepare((), {})
                except CorralError as exc:
                    raise ConfigurationError(
                        f"scheduled task {task_name!r} must take no arguments: {exc}"
                    ) from None
                self.declared_schedules.append(spec)
            self.tasks[task_name] = task
            return task

        return register

    def find_task(self, name: str) -> Task[Any, Any] | None:
        """The task registered under ``name``, else the first the :attr:`task_resolvers`
        return (None when no one knows it)."""
        task = self.tasks.get(name)
        for resolve in self.task_resolvers if task is None else ():
            task = resolve(name)
            if task is not None:
                break
        return task

    # -- backend --------------------------------------------------------------------

    def _make_backend(self) -> Backend:
        scheme = urlsplit(self.url).scheme
        if scheme in REDIS_SCHEMES:
            from corral.backends.redis import RedisBackend

            return RedisBackend(
                self.url,
                prefix=self.prefix,
                durable=self.durable,
                reconnect_timeout=self.reconnect_timeout,
            )
        if scheme in SQLITE_SCHEMES:
            from corral.backends.sqlite import SQLiteBackend

            return SQLiteBackend(self.url, durable=self.durable)
        raise ConfigurationError(f"unsupported backend scheme {scheme!r}")

    async def backend(self) -> Backend:
        """The connected backend for the running event loop (connects on first use)."""
        loop = asyncio.get_running_loop()
        backend = self._backends.get(loop)
        if backend is not None:
            return backend
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            backend = self._backends.get(loop)
            if backend is None:
                backend = self._make_backend()
                await backend.connect()
                self._backends[loop] = backend
        return backend

    async def close(self) -> None:
        """Close this event loop's connections (the app can be used again later)."""
        feed = self._feeds.pop(asyncio.get_running_loop(), None)
        if feed is not None:
            await feed.close()
        backend = self._backends.pop(asyncio.get_running_loop(), None)
        if backend is not None:
            await backend.close()

    def close_sync(self) -> None:
        """Close the connections used by the ``*_sync`` calls."""
        run_sync(self.close())

    # -- enqueue --------------------------------------------------------------------

    def _task_for(self, name: str, queue: str | None) -> Task[Any, Any]:
        task = self.tasks.get(name)
        if task is None:
            # A producer that only knows the name: no signature to check, no defaults
            # but the app's; the worker that runs it applies the task's own defaults.
            config = TaskConfig(name=check_task_name(name), queue=self.default_queue)
            task = Task(self, _unregistered, config)
        return task.options(queue=queue) if queue is not None else task

    async def enqueue(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
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
    ) -> Job:
        """Enqueue a job by task name, with or without the task imported here.

        A registered task's signature and defaults apply; an unregistered name goes
        to ``queue`` (default: the app's default queue) unchecked. The options are
        those of :meth:`Task.options`.
        """
        if not isinstance(args, list | tuple):
            raise ValidationError(f"args must be a list, got {type(args).__name__}")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise ValidationError(f"kwargs must be an object, got {type(kwargs).__name__}")
        task = self._task_for(name, queue).options(
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
        )
        target, new = task.prepare(tuple(args), dict(kwargs or {}))
        return (await self.submit(target, [new]))[0]

    def enqueue_sync(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """Blocking twin of :meth:`enqueue`."""
        return run_sync(self.enqueue(name, args, kwargs, **options))

    async def enqueue_many(self, calls: Iterable[Call]) -> list[Job]:
        """Enqueue many jobs (``task.call(...)`` items) in few round trips, grouped by
        queue. Everything is validated before anything is stored."""
        return await self.submit_many([call.task.prepare(call.args, call.kwargs) for call in calls])

    def enqueue_many_sync(self, calls: Iterable[Call]) -> list[Job]:
        """Blocking twin of :meth:`enqueue_many`."""
        return run_sync(self.enqueue_many(calls))

    async def submit_many(self, prepared: Sequence[tuple[str, NewJob]]) -> list[Job]:
        """Store prepared (queue, job) pairs (``Task.prepare``), one :meth:`submit` per
        queue; the handles come back in the order given."""
        by_queue: dict[str, list[int]] = {}
        for index, (queue, _new) in enumerate(prepared):
            by_queue.setdefault(queue, []).append(index)
        jobs: list[Job | None] = [None] * len(prepared)
        for queue, indexes in by_queue.items():
            created = await self.submit(queue, [prepared[i][1] for i in indexes])
            for index, job in zip(indexes, created, strict=True):
                jobs[index] = job
        return [job for job in jobs if job is not None]

    async def submit(self, queue: str, jobs: Sequence[NewJob]) -> list[Job]:
        """Store prepared jobs (the common path under every enqueue call)."""
        backend = await self.backend()
        if self.tracing is None:
            outcomes = await backend.enqueue(queue, jobs)
        else:
            jobs, outcomes = await self.tracing.send(queue, jobs, backend.enqueue)
        handles: list[Job] = []
        stored_at = getattr(outcomes, "stored_at_ms", None)
        for new, stand_in in zip(jobs, outcomes, strict=True):
            if stand_in is None:
                job = Job(self, queue, new.id, new_record(queue, new, stored_at))
            else:
                job = await Job(self, queue, stand_in).refresh()
            job.created = stand_in is None
            handles.append(job)
        hooks = self._producer_hooks() if self._listeners else None
        if hooks is not None:
            for new, stand_in in zip(jobs, outcomes, strict=True):
                if stand_in is None:
                    hooks.emit(JobEvent("enqueued", new.id, queue, new.name, 0, ""))
        if self._run_inline is not None:
            await self._run_inline(queue, handles)
        return handles

    def call(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
    ) -> Call:
        """A job description by task name, for flows and :meth:`enqueue_many`, with
        or without the task imported here (as :meth:`enqueue` treats the name)."""
        return Call(self._task_for(name, queue), tuple(args), dict(kwargs or {}))

    async def start_flow(
        self, flow: Flow, *, flow_id: str | None = None, fail_fast: bool | None = None
    ) -> FlowRun:
        """Store a flow (:func:`~corral.chain`, :func:`~corral.group`,
        :func:`~corral.chord` or a :class:`~corral.Flow`) and return its handle.

        Everything is checked before anything is stored (InvalidFlow names a cycle).
        ``flow_id`` makes the start idempotent: starting it again returns the flow
        already stored (and completes a start that was cut short).
        ``fail_fast`` (default: the flow's own, off unless set): a job failing for
        good, unless every edge from it is ``ignore``, cancels every unfinished job
        of the flow (running ones are asked to stop), each with a ``SiblingFailed``
        error naming the failed job.
        """
        fid, jobs = prepare_flow(flow, flow_id)
        if fail_fast is None:
            fail_fast = bool(getattr(flow, "fail_fast", False))
        elif not isinstance(fail_fast, bool):
            raise ValidationError(f"fail_fast must be True or False, got {fail_fast!r}")
        backend = await self.backend()
        created = await backend.add_flow(fid, jobs, fail_fast)
        run = await self.get_flow(fid)
        run.created = created
        return run

    def start_flow_sync(
        self, flow: Flow, *, flow_id: str | None = None, fail_fast: bool | None = None
    ) -> FlowRun:
        """Blocking twin of :meth:`start_flow`."""
        return run_sync(self.start_flow(flow, flow_id=flow_id, fail_fast=fail_fast))

    async def get_flow(self, flow_id: str, *, read_jobs: bool = True) -> FlowRun:
        """A stored flow with its jobs read now (``read_jobs=False``: not read, for its
        graph alone); raises JobNotFound when there is none."""
        backend = await self.backend()
        record = await backend.get_flow(flow_id)
        if record is None:
            raise JobNotFound(f"no flow {flow_id!r}")
        run = FlowRun(self, record)
        return await run.refresh() if read_jobs else run

    def get_flow_sync(self, flow_id: str) -> FlowRun:
        """Blocking twin of :meth:`get_flow`."""
        return run_sync(self.get_flow(flow_id))

    async def list_flows(self, limit: int = 20, *, cursor: str | None = None) -> FlowPage:
        """Stored flows, newest first, each with its jobs' states, task names and attempts
        read now (:meth:`FlowRun.refresh_briefs`; ``refresh()`` reads a flow's jobs
        whole); ``page.next_cursor`` fetches the next page. ValidationError for a
        ``limit`` outside 1..200 or a cursor this listing did not make."""
        if not 1 <= limit <= 200:
            raise ValidationError(f"limit must be between 1 and 200, got {limit!r}")
        backend = await self.backend()
        records = await backend.list_flows(limit + 1, parse_flow_cursor(cursor))
        runs = await asyncio.gather(*(FlowRun(self, r).refresh_briefs() for r in records[:limit]))
        more = len(records) > limit
        return FlowPage(list(runs), flow_cursor(records[limit - 1]) if more else None)

    def list_flows_sync(self, limit: int = 20, *, cursor: str | None = None) -> FlowPage:
        """Blocking twin of :meth:`list_flows`."""
        return run_sync(self.list_flows(limit, cursor=cursor))

    def cancelled_retention(self, task_name: str | None = None) -> Retention:
        """How many cancelled jobs a queue keeps: like completed ones, by the task's
        ``completed`` retention (the app's for a task not registered here)."""
        task = self.tasks.get(task_name) if task_name else None
        return task.config.completed if task else self.completed

    # -- reads ----------------------------------------------------------------------

    def queue(self, name: str) -> Queue:
        """A handle on one queue (no I/O)."""
        return Queue(self, name)

    async def queues(self) -> list[str]:
        """Names of the queues in use (see :meth:`overview`)."""
        backend = await self.backend()
        return await backend.queues()

    def queues_sync(self) -> list[str]:
        """Blocking twin of :meth:`queues`."""
        return run_sync(self.queues())

    async def overview(self) -> list[QueueOverview]:
        """Every queue with its counts and totals, sorted by name, read at once
        whatever the number of queues. Queues left with no job, schedule, limit or
        pause and served by no live worker are forgotten on the way."""
        backend = await self.backend()
        return await backend.overview()

    async def health(self) -> list[QueueHealth]:
        """Every queue (those :meth:`overview` lists, and those a live worker serves)
        sorted by name, with its counts, its live workers and a verdict, ``healthy``
        and ``reason``: the one the dashboard and ``GET /api/v1/queues`` show
        (unhealthy when paused with jobs waiting, or when jobs wait and no live
        worker serves the queue). Two reads, whatever the number of queues."""
        overview, workers = await asyncio.gather(self.overview(), self.workers())
        rows = {q.name: judge(q.name, q.counts, workers) for q in overview}
        for name in {queue for w in workers for queue in w.queues} - rows.keys():
            rows[name] = judge(name, {}, workers)  # served, never used (or emptied)
        return [rows[name] for name in sorted(rows)]

    def health_sync(self) -> list[QueueHealth]:
        """Blocking twin of :meth:`health`."""
        return run_sync(self.health())

    def event_feed(self) -> EventFeed:
        """The running event loop's shared event stream (see :meth:`events`)."""
        loop = asyncio.get_running_loop()
        feed = self._feeds.get(loop)
        if feed is None:

            async def open_stream() -> Any:
                return await (await self.backend()).all_events()

            feed = self._feeds[loop] = EventFeed(open_stream)
        return feed

    async def events(
        self, *, queues: Iterable[str] | None = None, buffer: int = 1000
    ) -> Subscription:
        """Lifecycle events of every queue (or of ``queues``), for one consumer:
        ``async for event in sub`` gives :class:`~corral.feed.Event` (queue, name,
        job_id); ``aclose()`` (or ``async with``) to stop. Returns once subscribed.

        However many consumers there are, the process holds ONE backend subscription
        (per event loop). A consumer more than ``buffer`` events behind loses the
        oldest (``sub.dropped`` counts them) instead of slowing the others.

        >>> async with await app.events(queues=["emails"]) as sub:
        ...     async for event in sub: print(event.name, event.job_id)
        """
        return await self.event_feed().subscribe(queues=queues, buffer=buffer)

    async def get_job(self, job_id: str, queue: str | None = None) -> Job:
        """The job with this id; without ``queue`` every known queue is searched (at
        once; an id held by several queues is found in the first by name).

        Raises JobNotFound.
        """
        check_job_id(job_id)
        backend = await self.backend()
        name = check_queue_name(queue) if queue else await backend.find_job_queue(job_id)
        if name is not None and (record := await backend.get(name, job_id)) is not None:
            return Job(self, name, job_id, record)
        where = f"queue {queue!r}" if queue else "any queue"
        raise JobNotFound(f"no job {job_id!r} in {where}")

    def get_job_sync(self, job_id: str, queue: str | None = None) -> Job:
        """Blocking twin of :meth:`get_job`."""
        return run_sync(self.get_job(job_id, queue))

    async def workers(self) -> list[WorkerInfo]:
        """The live workers (each refreshes its record; dead ones drop out)."""
        backend = await self.backend()
        return await backend.workers()

    def workers_sync(self) -> list[WorkerInfo]:
        """Blocking twin of :meth:`workers`."""
        return run_sync(self.workers())

    async def history(self, queue: str | None = None, span: Span = "hour") -> History:
        """Jobs completed and failed for good, and the p95 run time, of ``queue`` (None:
        every queue together) over the last hour (60 one-minute points) or day (96
        fifteen-minute points), oldest first, with totals. Raises ValidationError (a
        ValueError) naming the choices for another span.

        >>> (await app.history("emails", span="day")).points[-1].completed
        """
        step, count = span_window(span)
        backend = await self.backend()
        names = [check_queue_name(queue)] if queue is not None else await backend.queues()
        window = await backend.history(names, step, count)
        return History.build(queue, span, window, window.slots.values())

    async def histories(
        self, span: Span = "hour", queues: Sequence[str] | None = None
    ) -> dict[str, History]:
        """:meth:`history` of each of ``queues`` (default: every queue) by name, read
        at once whatever their number."""
        step, count = span_window(span)
        backend = await self.backend()
        if queues is None:
            names = await backend.queues()
        else:
            names = [check_queue_name(q) for q in queues]
        window = await backend.history(names, step, count)
        return {q: History.build(q, span, window, [rows]) for q, rows in window.slots.items()}

    def history_sync(self, queue: str | None = None, span: Span = "hour") -> History:
        """Blocking twin of :meth:`history`."""
        return run_sync(self.history(queue, span))


def _unregistered(*args: Any, **kwargs: Any) -> None:
    """Placeholder function of a task known here only by name."""
