"""Every error Corral raises, under one root.

::

    CorralError
    ├── ConfigurationError          bad URL, option or setting
    ├── BackendError                the store failed or refused an operation
    │   ├── ConnectionFailed        the store cannot be reached (URL shown, password masked)
    │   └── StoreFull               the store refused a write: out of memory (maxmemory)
    ├── ValidationError             bad input to a public call
    │   ├── InvalidName             queue or task name outside the safe alphabet
    │   ├── InvalidArguments        arguments that do not fit the task's signature
    │   ├── SerializationError      an argument or result that is not JSON
    │   ├── PayloadTooLarge         a payload over the configured limit
    │   ├── InvalidFlow             a flow with a cycle, an unknown or duplicate job
    │   └── InvalidSignature        a webhook whose signature does not verify
    ├── UnknownTask                 no task registered under that name
    ├── JobNotFound                 no job with that id
    ├── InvalidTransition           the action does not apply to the job's state
    ├── LeaseLost                   a worker acted on a job it no longer holds
    ├── JobTimeout                  (recorded error) the job ran past its timeout
    ├── MemoryLimitExceeded         (recorded error) an isolated job went over memory_limit
    ├── ChildProcessDied            (recorded error) the process running an isolated job died
    ├── JobFailed                   ``job.result()`` on a job that failed for good
    ├── JobCancelled                ``job.result()`` on a cancelled job; also the
    │                               signal a sync task raises to honour an abort
    ├── ResultTimeout               ``job.result(timeout=...)`` ran out of time
    └── TaskSignal                  what a task raises to steer its own job
        ├── Retry                   retry later (optionally after ``delay`` seconds)
        ├── NoRetry                 fail now, whatever attempts remain
        └── WaitForChildren         park the job until the child jobs it names end
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "BackendError",
    "ChildProcessDied",
    "ConfigurationError",
    "ConnectionFailed",
    "CorralError",
    "InvalidArguments",
    "InvalidFlow",
    "InvalidName",
    "InvalidSignature",
    "InvalidTransition",
    "JobCancelled",
    "JobFailed",
    "JobNotFound",
    "JobTimeout",
    "LeaseLost",
    "MemoryLimitExceeded",
    "NoRetry",
    "PayloadTooLarge",
    "ResultTimeout",
    "Retry",
    "SerializationError",
    "StoreFull",
    "TaskSignal",
    "UnknownTask",
    "ValidationError",
    "WaitForChildren",
    "WorkerStartupFailed",
    "error_summary",
]


def error_summary(error: Mapping[str, Any] | None) -> str:
    """``Type: message`` of a stored error record (its type without the module), or ""
    when there is none."""
    if not error:
        return ""
    kind = str(error.get("type", "")).rsplit(".", 1)[-1]
    return f"{kind}: {error.get('message', '')}"


class CorralError(Exception):
    """Root of every error Corral raises."""


class ConfigurationError(CorralError):
    """A URL, option or environment setting is wrong."""


class WorkerStartupFailed(CorralError):
    """An ``on_startup`` hook raised: the worker stops before claiming any job."""


class BackendError(CorralError):
    """The store failed or refused an operation (a driver error, translated)."""


class ConnectionFailed(BackendError):
    """The store could not be reached. ``reported``: the backend has logged this
    outage already (and will log its end), so a caller that carries on need not."""

    def __init__(self, message: str, *, reported: bool = False) -> None:
        super().__init__(message)
        self.reported = reported


class StoreFull(BackendError):
    """The store refused a write because it is full (Redis ``maxmemory`` reached with
    ``noeviction``). Nothing was written; workers can still drain the queue."""


class ValidationError(CorralError, ValueError):
    """Input to a public call was rejected before anything was stored."""


class InvalidName(ValidationError):
    """A queue or task name is empty, too long or outside the safe alphabet."""


class InvalidSignature(ValidationError):
    """A received webhook failed :func:`corral.notify.verify`: a header missing, the
    timestamp outside the tolerance, or no signature made with a known secret."""


class InvalidArguments(ValidationError, TypeError):
    """Arguments do not fit the task's signature."""


class InvalidFlow(ValidationError):
    """A flow that cannot run: a dependency cycle (named in the message), a
    dependency outside the flow, a duplicate name, or options a flow job cannot have."""


class SerializationError(ValidationError, TypeError):
    """A value is not JSON-serialisable."""


class PayloadTooLarge(ValidationError):
    """An encoded payload is over the configured size limit."""


class UnknownTask(CorralError, LookupError):
    """No task is registered under the given name."""


class JobNotFound(CorralError, LookupError):
    """No job exists with the given id (it may have been removed by retention)."""


class InvalidTransition(CorralError):
    """The requested action does not apply to the job in its current state."""


class LeaseLost(CorralError):
    """A worker tried to finish a job whose lease it no longer holds."""


class JobTimeout(CorralError, TimeoutError):
    """A job ran longer than its timeout."""


class MemoryLimitExceeded(CorralError, MemoryError):
    """An isolated job's process went over the task's ``memory_limit`` and was killed;
    ``peak`` is the largest resident size seen, in bytes."""

    def __init__(self, message: str, peak: int = 0) -> None:
        super().__init__(message)
        self.peak = peak


class ChildProcessDied(CorralError):
    """The child process running an isolated job died (a crash, ``os._exit``, a
    signal such as the kernel's OOM killer); ``exitcode`` as multiprocessing gives
    it (negative: the signal's number)."""

    def __init__(self, message: str, exitcode: int | None = None) -> None:
        super().__init__(message)
        self.exitcode = exitcode


class JobFailed(CorralError):
    """The awaited job ended ``failed``; ``error`` holds its last recorded error."""

    def __init__(self, job_id: str, error: dict[str, Any] | None) -> None:
        self.job_id = job_id
        self.error = error or {}
        detail = f"{self.error.get('type', 'Error')}: {self.error.get('message', '')}"
        super().__init__(f"job {job_id} failed: {detail}")


class JobCancelled(CorralError):
    """The job was cancelled; a sync task raises it to honour an abort request."""


class ResultTimeout(CorralError, TimeoutError):
    """The job did not finish within the time given to ``job.result()``."""


class TaskSignal(CorralError):
    """Base of the exceptions a task raises to steer what happens to its job."""


class Retry(TaskSignal):
    """Retry the job later; ``delay`` (seconds) overrides the backoff policy.

    With ``count_attempt=False`` the attempt is not spent (use it for an upstream
    rate limit, where the job did nothing wrong).
    """

    def __init__(
        self, message: str = "", *, delay: float | None = None, count_attempt: bool = True
    ) -> None:
        super().__init__(message or "retry requested by the task")
        self.delay = delay
        self.count_attempt = count_attempt


class NoRetry(TaskSignal):
    """Fail the job now and send it to the dead-letter set, whatever attempts remain."""


class WaitForChildren(TaskSignal):
    """Start child jobs and park this one until they have ended, holding no worker
    slot; then the task runs again from the start and reads the children's outcomes
    with ``ctx.dependencies()`` / ``ctx.dependency_results()`` (by name, as in a flow).

    ``children``: ``task.call(...)`` items, a group, or any flow (``chain``,
    ``chord``, a :class:`~corral.flow.Flow`: children may depend on one another); this
    job waits for every child. ``on_failure`` applies to each child as in a flow
    (``"fail"``: a child that fails fails this job). The parked run gives its attempt
    back. Isolated tasks (``isolation="process"``) may raise it too.
    """

    def __init__(self, children: Any, *, on_failure: str = "fail") -> None:
        super().__init__("waiting for child jobs")
        self.children = children
        self.on_failure = on_failure
