"""Assert that a job was (or was not) enqueued, reading the store."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from corral._sync import run_sync
from corral.backends.base import JobState
from corral.errors import ValidationError
from corral.job import Job
from corral.policy import check_queue_name
from corral.search import job_state
from corral.task import Task

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["assert_enqueued", "assert_not_enqueued", "enqueued_jobs"]

T = TypeVar("T")

#: Jobs read per queue and state (a test's store holds far fewer).
_LIMIT = 10_000
#: Jobs listed in a failure message.
_SHOWN = 20
_DEFAULT_STATES = (JobState.WAITING, JobState.DELAYED)


def assert_enqueued(
    app: Corral,
    task: Task[Any, Any] | str,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    queue: str | None = None,
    count: int | None = None,
    states: Iterable[JobState | str] = _DEFAULT_STATES,
) -> list[Job]:
    """Assert that ``app``'s store holds a job of ``task`` (a task or its name) called
    with ``args`` / ``kwargs``, and return the matching jobs.

    Without ``args`` and ``kwargs`` any arguments match; with either, they are the
    whole call (the one not given is empty). For a task registered on ``app`` two
    calls that bind alike match (``f(1, b=2)`` is ``f(1, 2)``, defaults filled in);
    ``unittest.mock.ANY`` matches any one value. ``queue``: only that queue (default:
    every queue). ``count``: exactly that many matches (default: at least one).
    ``states``: the states read (default waiting and delayed: jobs not yet run).
    AssertionError otherwise, listing the jobs found instead. A plain function: call
    it from sync or async tests alike (in async code it reads on a thread of its own).
    """
    __tracebackhide__ = True  # pytest shows the test's line, not this function's
    matched, others, where = _search(app, task, args, kwargs, queue, states)
    if (count is None and matched) or (count is not None and len(matched) == count):
        return matched
    wanted = "a job" if count is None else f"{count} job(s)"
    found = f"found {len(matched)} matching" if matched else "found none"
    lines = [f"expected {wanted} {_call_text(task, args, kwargs)} {where}; {found}"]
    lines += _listing("matching", matched)
    lines += _listing("enqueued instead", others) if others else ["  nothing else was enqueued"]
    raise AssertionError("\n".join(lines))


def assert_not_enqueued(
    app: Corral,
    task: Task[Any, Any] | str,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    queue: str | None = None,
    states: Iterable[JobState | str] = _DEFAULT_STATES,
) -> None:
    """Assert that no job matching as in :func:`assert_enqueued` is in the store;
    AssertionError listing the ones found."""
    __tracebackhide__ = True
    matched, _, where = _search(app, task, args, kwargs, queue, states)
    if matched:
        lines = [f"expected no job {_call_text(task, args, kwargs)} {where}; found {len(matched)}"]
        raise AssertionError("\n".join([*lines, *_listing("found", matched)]))


def enqueued_jobs(
    app: Corral,
    queue: str | None = None,
    *,
    states: Iterable[JobState | str] = _DEFAULT_STATES,
) -> list[Job]:
    """Every job in ``states`` (default waiting and delayed) of ``queue`` (default:
    every queue), for assertions of your own; callable from sync or async code."""
    names = None if queue is None else [check_queue_name(queue)]
    wanted = [job_state(s) for s in states]
    return _blocking(app, lambda: _read(app, names, wanted))


def _search(
    app: Corral,
    task: Task[Any, Any] | str,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    queue: str | None,
    states: Iterable[JobState | str],
) -> tuple[list[Job], list[Job], str]:
    signature: inspect.Signature | None
    if isinstance(task, Task):
        name, signature = task.name, task.signature
    elif isinstance(task, str):
        registered = app.tasks.get(task)
        name, signature = task, registered.signature if registered else None
    else:
        raise ValidationError(f"task must be a Task or a task name, got {task!r}")
    if args is not None and (isinstance(args, str) or not isinstance(args, Sequence)):
        raise ValidationError(f"args must be a list, got {args!r}")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ValidationError(f"kwargs must be a dict, got {kwargs!r}")
    wanted = [job_state(s) for s in states]
    if not wanted:
        raise ValidationError("states must name at least one state")
    match = _matcher(name, signature, args, kwargs)
    names = None if queue is None else [check_queue_name(queue)]
    jobs = _blocking(app, lambda: _read(app, names, wanted))
    matched = [job for job in jobs if job.name == name and match(job)]
    others = [job for job in jobs if job not in matched]
    # The task's own jobs first: the likeliest near misses.
    others.sort(key=lambda job: job.name != name)
    where = f"in queue {queue!r}" if queue else "in any queue"
    where += f" ({' or '.join(s.value for s in wanted)})"
    return matched, others, where


def _matcher(
    name: str,
    signature: inspect.Signature | None,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
) -> Callable[[Job], bool]:
    if args is None and kwargs is None:
        return lambda job: True
    want_args, want_kwargs = list(args or ()), dict(kwargs or {})
    if signature is None:
        return lambda job: want_args == job.args and want_kwargs == job.kwargs
    try:
        expected = signature.bind(*want_args, **want_kwargs)
    except TypeError as exc:
        raise ValidationError(f"the arguments given do not fit task {name!r}: {exc}") from None
    expected.apply_defaults()

    def match(job: Job) -> bool:
        try:
            actual = signature.bind(*job.args, **job.kwargs)
        except TypeError:
            return False
        actual.apply_defaults()
        return expected.arguments == actual.arguments

    return match


async def _read(app: Corral, queues: list[str] | None, states: list[JobState]) -> list[Job]:
    backend = await app.backend()
    names = queues if queues is not None else await backend.queues()
    jobs: list[Job] = []
    for queue in names:
        for state in states:
            records = await backend.list_jobs(queue, state, 0, _LIMIT)
            jobs += [Job(app, queue, r.id, r) for r in records]
    return jobs


def _blocking(app: Corral, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a read to its end from sync code (Corral's background loop) or from async
    code (a loop on a thread of its own, its connection closed after)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_sync(make())

    async def once() -> T:
        try:
            return await make()
        finally:
            await app.close()

    box: list[Any] = []

    def target() -> None:
        try:
            box.append(("ok", asyncio.run(once())))
        except BaseException as exc:
            box.append(("error", exc))

    thread = threading.Thread(target=target, name="corral-testing-read", daemon=True)
    thread.start()
    thread.join()
    kind, value = box[0]
    if kind == "error":
        raise value
    result: T = value
    return result


def _call_text(task: Task[Any, Any] | str, args: Any, kwargs: Any) -> str:
    name = task.name if isinstance(task, Task) else task
    if args is None and kwargs is None:
        return f"of task {name!r} (any arguments)"
    return f"{name}(args={list(args or ())!r}, kwargs={dict(kwargs or {})!r})"


def _listing(title: str, jobs: list[Job]) -> list[str]:
    if not jobs:
        return []
    lines = [f"  {title}:"]
    for job in jobs[:_SHOWN]:
        extra = (
            f", run_at {job.run_at.isoformat()}"
            if job.state is JobState.DELAYED and job.run_at
            else ""
        )
        lines.append(
            f"    - {job.name}(args={job.args!r}, kwargs={job.kwargs!r}) "
            f"queue={job.queue!r} {job.state.value}{extra} id={job.id}"
        )
    if len(jobs) > _SHOWN:
        lines.append(f"    ... and {len(jobs) - _SHOWN} more")
    return lines
