"""Inline mode: every enqueue runs its job to the end before it returns.

Unlike an "eager" mode that just calls the function, the job goes through the store
and the worker's own code: it is stored (so :func:`~corral.testing.assert_enqueued`
and ``job.refresh()`` see it), claimed under a lease, its arguments decoded from the
stored JSON and checked against the signature, run with the task's timeout, its
result encoded, and its outcome recorded, retries included. What differs from a
worker is stated in :func:`inline`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from corral.backends.base import Backend, ClaimedJob, Completion, JobState
from corral.context import JobContext
from corral.errors import CorralError, JobNotFound
from corral.hooks import EventName, JobEvent
from corral.options import TaskConfig
from corral.serialization import loads
from corral.worker.dispatch import Dispatcher, error_of
from corral.worker.executor import Kind, Outcome, execute
from corral.worker.threads import JobThreads

if TYPE_CHECKING:
    from corral.app import Corral
    from corral.job import Job
    from corral.task import Task

__all__ = ["inline"]

log = logging.getLogger("corral.testing")

#: An inline job is never renewed: its lease outlasts any test.
_LEASE_MS = 15 * 60 * 1000
#: Attempts of one job before inline mode gives up (a task that retries for ever).
MAX_RUNS = 100
_FINISHED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


@contextmanager
def inline(
    app: Corral,
    *,
    raise_errors: bool = True,
    run_delayed: bool = False,
    worker_state: dict[str, Any] | None = None,
) -> Iterator[None]:
    """Within the block, each enqueue on ``app`` (``task.enqueue``, ``enqueue_sync``,
    ``app.enqueue`` by name, ``enqueue_many``) runs its job before it returns, in the
    caller: on the caller's event loop (``*_sync`` calls: Corral's background loop),
    sync tasks in a thread, as a worker would.

    Kept from a worker: the job is stored and claimed; the task receives its arguments
    decoded from the stored JSON; the task's ``timeout`` applies; a result JSON would
    change fails the job; the retry policy applies, each error recorded; lifecycle
    listeners and ``on_*`` callbacks are called (and finish before the enqueue returns);
    the returned handle shows the outcome (``job.state``, ``job.return_value``).

    Differences: backoff waits (and ``Retry(delay=...)``) are skipped: a retry runs
    at once. With ``raise_errors`` (the default) an enqueue whose job failed for good
    raises the task's exception itself, after recording it (else it returns the
    failed job). Delayed jobs (``delay=``, debounce) stay delayed unless
    ``run_delayed``. A job enqueued from a running job runs at once, inside it. No
    ``on_startup`` hook runs: ``ctx.worker_state`` is ``worker_state`` (default
    ``{}``). Nothing renews the lease or watches for cancellation. An enqueue that
    returns an existing job (same ``job_id``, dedupe) runs nothing. Jobs of the queue
    waiting ahead of the new one (enqueued before inline mode) run first; a job that
    cannot be claimed (paused queue, over a limit) stays waiting, with a warning.
    """
    runner = _Runner(app, raise_errors, run_delayed, worker_state)
    previous = app._run_inline
    app._run_inline = runner.run
    try:
        yield
    finally:
        app._run_inline = previous
        runner.close()


class _Runner:
    def __init__(
        self,
        app: Corral,
        raise_errors: bool,
        run_delayed: bool,
        worker_state: dict[str, Any] | None,
    ) -> None:
        self.app = app
        self.raise_errors = raise_errors
        self.run_delayed = run_delayed
        self.state: dict[str, Any] = {} if worker_state is None else worker_state
        self.id = f"{socket.gethostname()}:{os.getpid()}:inline-{os.urandom(3).hex()}"
        self._threads = JobThreads("corral-inline")
        self._rng = random.Random()

    def close(self) -> None:
        self._threads.shutdown()

    async def run(self, queue: str, jobs: list[Job]) -> None:
        """Run the jobs of one stored batch; raise the first failure's exception."""
        backend = await self.app.backend()
        hooks = Dispatcher(self.app.listeners)
        first: BaseException | None = None
        try:
            for job in jobs:
                if not job.created:
                    continue  # an existing job stood in for it: nothing new to run
                if job.state is JobState.DELAYED:
                    if not self.run_delayed:
                        continue
                    await backend.promote(queue, job.id)
                error = await self._run_until_finished(backend, hooks, queue, job.id)
                first = first or error
                # A job its retention removed at once: the handle keeps what it had.
                with contextlib.suppress(JobNotFound):
                    await job.refresh()
        finally:
            await hooks.drain(self.app.callback_timeout + 1.0)
        if first is not None and self.raise_errors:
            raise first

    async def _run_until_finished(
        self, backend: Backend, hooks: Dispatcher, queue: str, job_id: str
    ) -> BaseException | None:
        """Claim and run the queue's jobs until ``job_id`` has finished; its exception
        if it failed for good."""
        runs = 0
        error: BaseException | None = None
        while True:
            record = await backend.get(queue, job_id)
            if record is None or record.state in _FINISHED:
                return error if record is not None and record.state is JobState.FAILED else None
            if record.state is JobState.ACTIVE:
                # Taken by a worker, or by another inline enqueue on this loop.
                await backend.wait_finished(queue, job_id, 30.0)
                continue
            if record.state is JobState.DELAYED:
                await backend.promote(queue, job_id)
            claimed, _ = await backend.claim(queue, 1, _LEASE_MS, self.id)
            if not claimed:
                log.warning(
                    "inline: job %s (%s) stays waiting: queue %r is paused or over a limit",
                    job_id,
                    record.name,
                    queue,
                )
                return None
            outcome = await self._run_one(backend, hooks, claimed[0])
            if claimed[0].id != job_id:
                continue
            runs += 1
            if outcome.kind is Kind.FAILED:
                error = outcome.exc
            if runs >= MAX_RUNS and outcome.kind is Kind.RETRY:
                raise CorralError(
                    f"inline: job {job_id} ({record.name}) asked to retry {runs} times; "
                    "it was left waiting (does the task retry without end?)"
                )

    async def _run_one(self, backend: Backend, hooks: Dispatcher, claimed: ClaimedJob) -> Outcome:
        try:
            task = self.app.find_task(claimed.name)  # registered, or a resolver's
        except Exception:  # as in a worker: the job fails as an unknown task
            log.exception("resolving task %r failed", claimed.name)
            task = None
        config: TaskConfig | None = None
        if task is not None:
            try:
                config = task.config.for_job(claimed.options)
            except Exception:
                config = task.config
        loop = asyncio.get_running_loop()
        ctx = JobContext(claimed, backend, loop, config.attempts if config else 1, self.state)
        self._emit(hooks, "started", claimed, ctx)
        run = execute(task, config, claimed, ctx, self._threads, self._rng, self.id)
        tracing = self.app.tracing
        outcome = await (run if tracing is None else tracing.process(claimed, run))
        await self._record(backend, hooks, claimed, task, config, ctx, outcome)
        return outcome

    async def _record(
        self,
        backend: Backend,
        hooks: Dispatcher,
        claimed: ClaimedJob,
        task: Task[Any, Any] | None,
        config: TaskConfig | None,
        ctx: JobContext,
        outcome: Outcome,
    ) -> None:
        """Record the outcome as a worker would (a retry is due at once)."""
        app = self.app
        notify = "" if task is None else app.notify_events(task, ())
        cancelled = config.completed if config else app.cancelled_retention(claimed.name)
        if outcome.kind is Kind.COMPLETED:
            kept = config.completed if config else app.completed
            done = Completion(claimed.id, claimed.token, outcome.result, notify)
            (accepted,) = await backend.complete(claimed.queue, [done], kept)
            if accepted:
                self._emit(hooks, "completed", claimed, ctx, result=loads(outcome.result))
        elif outcome.kind is Kind.CANCELLED:
            await backend.abort(
                claimed.queue, claimed.id, claimed.token, outcome.error, cancelled, notify
            )
            self._emit(hooks, "cancelled", claimed, ctx, error=error_of(outcome.error))
        elif outcome.kind is Kind.DROPPED:
            await backend.release(claimed.queue, [(claimed.id, claimed.token)], cancelled)
        else:
            retry = 0 if outcome.kind is Kind.RETRY else None
            await backend.fail(
                claimed.queue,
                claimed.id,
                claimed.token,
                outcome.error,
                retry,
                config.failed if config else app.failed,
                count_attempt=outcome.count_attempt,
                cancelled=cancelled,
                notify=notify,
            )
            event: EventName = "retrying" if retry is not None else "failed"
            self._emit(hooks, event, claimed, ctx, error=error_of(outcome.error), retry_in=retry)

    def _emit(
        self,
        hooks: Dispatcher,
        kind: EventName,
        claimed: ClaimedJob,
        ctx: JobContext,
        **details: Any,
    ) -> None:
        if hooks.active:
            event = JobEvent(
                kind,
                claimed.id,
                claimed.queue,
                claimed.name,
                claimed.attempt,
                self.id,
                ctx=ctx,
                **details,
            )
            hooks.emit(event, ctx)
