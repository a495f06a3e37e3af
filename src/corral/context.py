"""What a running task can see and do about its own job.

A task receives a :class:`JobContext` when its first parameter is annotated with
it, or calls :func:`current_job` anywhere below the task (also inside threads the
worker runs it in).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from corral.errors import CorralError, JobCancelled
from corral.serialization import dumps

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from corral.backends.base import Backend, ClaimedJob, DependencyOutcome

__all__ = ["Dependency", "JobContext", "current_job"]

T = TypeVar("T")

_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("corral_job")


def current_job() -> JobContext:
    """The context of the job running in this task; raises CorralError outside one."""
    try:
        return _current.get()
    except LookupError:
        raise CorralError("current_job() was called outside a running job") from None


@dataclass(frozen=True, slots=True)
class Dependency:
    """A dependency's outcome as a job of a flow received it: ``state`` (completed,
    failed or cancelled), its ``result`` (None unless completed) and last ``error``."""

    state: str
    result: Any
    error: dict[str, Any] | None

    @property
    def completed(self) -> bool:
        return self.state == "completed"

    @classmethod
    def of(cls, outcome: DependencyOutcome) -> Dependency:
        result = None if outcome.result is None else orjson.loads(outcome.result)
        error = None if outcome.error is None else orjson.loads(outcome.error)
        return cls(outcome.state, result, error)


class JobContext:
    """A running job: its identity, and progress, logs and cancellation.

    Async tasks ``await ctx.progress(...)``; sync tasks (run in threads) call the
    ``*_sync`` twins, which go through the worker's own event loop.
    """

    def __init__(
        self,
        claimed: ClaimedJob,
        backend: Backend,
        loop: asyncio.AbstractEventLoop,
        max_attempts: int,
        worker_state: dict[str, Any] | None = None,
    ) -> None:
        self.id = claimed.id
        self.queue = claimed.queue
        self.name = claimed.name
        self.attempt = claimed.attempt
        #: How often this job's lease expired before (its earlier workers died).
        self.stalls = claimed.stalls
        self.max_attempts = max_attempts
        self._token = claimed.token
        self._backend = backend
        self._loop = loop
        # Set once from the worker's loop, read by the task (any thread): a plain
        # attribute suffices, and costs far less per job than a threading.Event.
        self.cancel_reason: str | None = None
        #: What the worker's ``on_startup`` hooks stored (a DB pool, an HTTP client),
        #: shared by every job of the worker.
        self.worker_state: dict[str, Any] = {} if worker_state is None else worker_state
        #: Set by a worker with lifecycle listeners: told of each stored progress.
        self._on_progress: Callable[[JobContext, Any], None] | None = None
        #: The latest listener call for this job, per listener index (the next waits).
        self._hooks_last: dict[int, asyncio.Task[None]] | None = None

    @property
    def cancelled(self) -> bool:
        """True once the job was asked to stop (cancel, timeout, lost lease, shutdown)."""
        return self.cancel_reason is not None

    @property
    def redis(self) -> Redis:
        """The worker's own asyncio Redis client (Redis backend only), for a task's
        own Redis work: counters, caches, locks. Shared by every job of the worker,
        its ordinary commands are pipelined on one connection, so each costs a
        fraction of a pooled client's. Replies are bytes; use it from async tasks."""
        client = getattr(self._backend, "redis", None)
        if client is None:
            raise CorralError(
                f"ctx.redis needs the Redis backend; this worker runs on "
                f"{type(self._backend).__name__}"
            )
        return client  # type: ignore[no-any-return]

    async def dependencies(self) -> dict[str, Dependency]:
        """In a flow: the outcome of each of this job's dependencies, by its name in
        the flow (``{}`` outside a flow). A dependency that ended before this job
        started is here; with ``on_failure="ignore"`` one may have failed."""
        outcomes = await self._backend.dependency_outcomes(self.queue, self.id)
        return {name: Dependency.of(o) for name, o in outcomes.items()}

    async def dependency_results(self) -> dict[str, Any]:
        """The results of the dependencies that completed, by name (a fan-in's
        inputs): ``sum((await ctx.dependency_results()).values())``."""
        return {n: d.result for n, d in (await self.dependencies()).items() if d.completed}

    def dependencies_sync(self) -> dict[str, Dependency]:
        """Blocking twin of :meth:`dependencies`, for sync tasks."""
        return self._call_sync(self.dependencies())

    def dependency_results_sync(self) -> dict[str, Any]:
        """Blocking twin of :meth:`dependency_results`, for sync tasks."""
        return self._call_sync(self.dependency_results())

    def raise_if_cancelled(self) -> None:
        """Raise JobCancelled if the job was asked to stop (for sync tasks' loops)."""
        if self.cancel_reason is not None:
            raise JobCancelled(f"job {self.id} was asked to stop ({self.cancel_reason})")

    def _request_cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason

    async def progress(self, value: Any) -> bool:
        """Store the job's progress: any JSON value (a number, or a dict such as
        ``{"page": 12, "pages": 40}``). False if the job's lease was lost."""
        data = dumps(value, what="progress")
        stored = await self._backend.update(self.queue, self.id, self._token, progress=data)
        if stored and self._on_progress is not None:
            self._on_progress(self, value)
        return stored

    async def log(self, *lines: str) -> bool:
        """Append lines to the job's log (the last 1,000 are kept)."""
        return await self._backend.update(self.queue, self.id, self._token, logs=lines)

    def progress_sync(self, value: Any) -> bool:
        """Blocking twin of :meth:`progress`, for sync tasks."""
        return self._call_sync(self.progress(value))

    def log_sync(self, *lines: str) -> bool:
        """Blocking twin of :meth:`log`, for sync tasks."""
        return self._call_sync(self.log(*lines))

    def _call_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        what = getattr(coro, "__qualname__", "").rsplit(".", 1)[-1]
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise CorralError(f"in an async task, await ctx.{what}() instead")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _bind(self) -> contextvars.Token[JobContext]:
        return _current.set(self)

    @staticmethod
    def _unbind(token: contextvars.Token[JobContext]) -> None:
        _current.reset(token)
