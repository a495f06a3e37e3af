"""Run one claimed job and decide its outcome; nothing here touches the backend.

Every way a job can go wrong (unknown task, bad payload, arguments that do not fit,
an exception, a timeout, a result that is not JSON) ends as an :class:`Outcome`,
never as an exception that could stop the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import random
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from corral.backends.base import ClaimedJob
from corral.callbacks import AroundTask
from corral.context import JobContext
from corral.errors import (
    InvalidArguments,
    JobCancelled,
    JobTimeout,
    NoRetry,
    PayloadTooLarge,
    Retry,
    SerializationError,
    UnknownTask,
    WaitForChildren,
)
from corral.options import TaskConfig
from corral.policy import Backoff
from corral.serialization import decode, encode_result
from corral.task import Task
from corral.worker.child import RemoteError
from corral.worker.isolation import ProcessPool
from corral.worker.threads import JobThreads

__all__ = [
    "Kind",
    "Outcome",
    "error_record",
    "execute",
    "failure_outcome",
    "log_outcome",
    "stopped",
]

log = logging.getLogger("corral.worker")
job_log = logging.getLogger("corral.job")

_PERMANENT = (UnknownTask, InvalidArguments, SerializationError, PayloadTooLarge, NoRetry)


class Kind(Enum):
    COMPLETED = "completed"
    RETRY = "retry"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: Lease lost or worker shutting down: the outcome is not ours to record.
    DROPPED = "dropped"
    #: The task raised WaitForChildren: park it until its children end (``exc``).
    PARK = "park"


@dataclass(slots=True)
class Outcome:
    kind: Kind
    result: bytes = b"null"
    error: bytes = b""
    error_text: str = ""
    retry_in_ms: int = 0
    count_attempt: bool = True
    #: What the task raised (a failure or retry), for tracing; never stored.
    exc: BaseException | None = None


def _type_name(exc: BaseException) -> str:
    """An exception's type as errors are stored: ``module.Qualname`` (builtins bare)."""
    if isinstance(exc, RemoteError):
        return exc.type_name
    kind = type(exc)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def error_record(
    exc: BaseException, attempt: int, *, with_traceback: bool = True, worker: str | None = None
) -> bytes:
    """The JSON stored for a failed attempt: type, message, traceback, attempt, at, and
    the id of the worker that ran it (when given)."""
    tb = "".join(traceback.format_exception(exc)) if with_traceback else None
    if isinstance(exc, RemoteError) and with_traceback:
        tb = exc.remote_traceback  # the child's, where the task ran
    record = {
        "type": _type_name(exc),
        "message": str(exc),
        "traceback": tb,
        "attempt": attempt,
        "at": int(time.time() * 1000),
    }
    if worker is not None:
        record["worker"] = worker
    return orjson.dumps(record)


def failure_outcome(
    exc: BaseException,
    config: TaskConfig | None,
    attempt: int,
    rng: random.Random,
    worker: str | None = None,
) -> Outcome:
    """Retry or dead-letter, by the task's attempts and backoff policy."""
    if isinstance(exc, WaitForChildren):
        return Outcome(Kind.PARK, exc=exc)
    permanent = config is None or isinstance(exc, _PERMANENT)
    traced = not isinstance(exc, _PERMANENT)
    error = error_record(exc, attempt, with_traceback=traced, worker=worker)
    text = f"{_type_name(exc).rsplit('.', 1)[-1]}: {exc}"
    if permanent:
        return Outcome(Kind.FAILED, error=error, error_text=text, exc=exc)
    assert config is not None
    if isinstance(exc, Retry):
        if exc.count_attempt and attempt >= config.attempts:
            return Outcome(Kind.FAILED, error=error, error_text=text, exc=exc)
        delay = exc.delay if exc.delay is not None else _backoff(config, attempt, exc, rng)
        return Outcome(
            Kind.RETRY,
            error=error,
            error_text=text,
            retry_in_ms=int(delay * 1000),
            count_attempt=exc.count_attempt,
            exc=exc,
        )
    if attempt >= config.attempts:
        return Outcome(Kind.FAILED, error=error, error_text=text, exc=exc)
    delay = _backoff(config, attempt, exc, rng)
    return Outcome(Kind.RETRY, error=error, error_text=text, retry_in_ms=int(delay * 1000), exc=exc)


def _backoff(config: TaskConfig, retry: int, exc: BaseException, rng: random.Random) -> float:
    policy = config.backoff
    if isinstance(policy, Backoff):
        return policy.delay(retry, rng)
    try:
        return max(0.0, float(policy(retry, exc)))
    except Exception:
        log.exception("backoff function of task %s failed; using the default", config.name)
        return Backoff().delay(retry, rng)


async def execute(
    task: Task[Any, Any] | None,
    config: TaskConfig | None,
    claimed: ClaimedJob,
    ctx: JobContext,
    threads: JobThreads,
    rng: random.Random,
    worker: str | None = None,
    children: ProcessPool | None = None,
) -> Outcome:
    """Run the job's function and turn whatever happens into an Outcome (an error
    records ``worker``, the id of the worker running it). An isolated task's job runs
    in one of ``children``."""
    try:
        if task is None or config is None:
            raise UnknownTask(
                f"no task named {claimed.name!r} is registered in this worker "
                "(is the module that defines it imported by the app?)"
            )
        args, kwargs = decode(claimed.data)
        if not task.binds_on_call:
            try:
                task.signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise InvalidArguments(f"arguments do not fit task {task.name!r}: {exc}") from None
        if config.isolation is not None and children is not None:
            return Outcome(Kind.COMPLETED, result=await children.run(task, config, claimed, ctx))
        if task.wants_context:
            args = [ctx, *args]
        token = ctx._bind()
        around = task.app.around
        try:
            if config.timeout is None and task.is_async and not around:
                value = await _call_async(task, args, kwargs)  # the common case, inline
            else:
                value = await _call(task, args, kwargs, config.timeout, ctx, threads, around)
        finally:
            ctx._unbind(token)
        return Outcome(
            Kind.COMPLETED, result=encode_result(value, task.name, task.app.max_result_bytes)
        )
    except asyncio.CancelledError:
        outcome = stopped(ctx, claimed, worker)
        if outcome is None:
            raise
        return outcome
    except JobCancelled as exc:
        return stopped(ctx, claimed, worker) or failure_outcome(
            exc, config, claimed.attempt, rng, worker
        )
    except Exception as exc:
        return failure_outcome(exc, config, claimed.attempt, rng, worker)


def stopped(ctx: JobContext, claimed: ClaimedJob, worker: str | None) -> Outcome | None:
    """The outcome of a job the worker asked to stop, or None if it did not."""
    if ctx.cancel_reason == "cancelled":
        reason = JobCancelled("cancelled while running")
        error = error_record(reason, claimed.attempt, with_traceback=False, worker=worker)
        return Outcome(Kind.CANCELLED, error=error, error_text="cancelled")
    if ctx.cancel_reason in ("lost", "shutdown"):
        return Outcome(Kind.DROPPED)
    return None


def _call_async(task: Task[Any, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    """The coroutine of an async task (awaited by the caller: no extra frame)."""
    try:
        return task.fn(*args, **kwargs)
    except TypeError as exc:
        if not task.binds_on_call:
            raise
        # Calling an ``async def`` only binds the arguments: a TypeError here
        # means they do not fit (cheaper than Signature.bind on every job).
        raise InvalidArguments(f"arguments do not fit task {task.name!r}: {exc}") from None


def _in_contexts(
    around: Sequence[AroundTask], ctx: JobContext, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """``fn(*args, **kwargs)`` inside the app's task contexts (in the calling thread)."""
    with contextlib.ExitStack() as stack:
        for factory in around:
            stack.enter_context(factory(ctx))
        return fn(*args, **kwargs)


async def _invoke(
    task: Task[Any, Any],
    args: list[Any],
    kwargs: dict[str, Any],
    ctx: JobContext,
    threads: JobThreads,
    around: Sequence[AroundTask],
) -> Any:
    if task.is_async:
        if not around:
            return await _call_async(task, args, kwargs)
        # Entered in the job's own asyncio task: context variables set here are the job's.
        with contextlib.ExitStack() as stack:
            for factory in around:
                stack.enter_context(factory(ctx))
            return await _call_async(task, args, kwargs)
    # Threads don't inherit context variables: run the call inside a copy so
    # current_job() works in sync tasks too.
    call_context = contextvars.copy_context()
    fn = task.fn
    if around:
        fn = functools.partial(_in_contexts, around, ctx, fn)
    future = threads.submit(lambda: call_context.run(fn, *args, **kwargs))
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        # No reason yet: the job's timeout (its reason is set once this returns).
        threads.abandon(future, f"{ctx.id} ({task.name})", ctx.cancel_reason or "timeout")
        raise


async def _call(
    task: Task[Any, Any],
    args: list[Any],
    kwargs: dict[str, Any],
    timeout: float | None,
    ctx: JobContext,
    threads: JobThreads,
    around: Sequence[AroundTask] = (),
) -> Any:
    if timeout is None:  # the common case: no timeout context per job
        return await _invoke(task, args, kwargs, ctx, threads, around)
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await _invoke(task, args, kwargs, ctx, threads, around)
    except TimeoutError as exc:
        if deadline.expired():
            # Tell a sync task (its thread cannot be stopped) to give up.
            ctx._request_cancel("timeout")
            raise JobTimeout(f"job ran longer than its timeout of {timeout:g} s") from exc
        raise


def log_outcome(
    verb: str,
    claimed: ClaimedJob,
    duration_ms: float,
    accepted: bool,
    outcome: Outcome | None = None,
) -> None:
    """The one log line per job outcome (never the job's arguments: they may hold
    secrets). Completions at INFO, retries at WARNING, failures at ERROR. The line's
    fields ride along as ``corral_job`` for a structured formatter (corral.logs)."""
    fields: dict[str, Any] = {
        "job_id": claimed.id,
        "task": claimed.name,
        "queue": claimed.queue,
        "attempt": claimed.attempt,
        "outcome": verb,
        "duration": round(duration_ms / 1000, 6),
    }
    extra = {"corral_job": fields, "corral_options": claimed.options}
    if not accepted:
        fields["lease_lost"] = True
        log.warning(
            "job %s (%s) %s, but its lease was lost: outcome rejected",
            claimed.id,
            claimed.name,
            verb,
            extra=extra,
        )
        return
    level = logging.INFO
    detail = ""
    if outcome is not None:
        level = logging.WARNING if verb == "retrying" else logging.ERROR
        detail = f" error={outcome.error_text!r}"
        if outcome.exc is not None:
            fields["error_type"] = _type_name(outcome.exc)
            fields["error_message"] = str(outcome.exc)
        else:
            kind, _, message = outcome.error_text.partition(": ")
            fields["error_type"], fields["error_message"] = kind, message
        if verb == "retrying":
            detail += f" retry_in={outcome.retry_in_ms / 1000:.2f}s"
            fields["retry_in"] = outcome.retry_in_ms / 1000
    job_log.log(
        level,
        "%s task=%s id=%s queue=%s attempt=%d duration=%.1fms%s",
        verb,
        claimed.name,
        claimed.id,
        claimed.queue,
        claimed.attempt,
        duration_ms,
        detail,
        extra=extra,
    )
