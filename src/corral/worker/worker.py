"""The worker: claims jobs in batches, runs them, records outcomes, keeps leases.

One event loop runs everything: the fetch loop (claim a batch, block on the
queue's marker when empty), one asyncio task per running job (sync functions on
:class:`~corral.worker.threads.JobThreads`), an ack loop that records completions in
batches, one lease timer that renews every held lease in one call per queue, a reaper
that recovers stalled jobs every second and a heartbeat that refreshes the worker
record. The background loops are supervised (:mod:`corral.worker.supervise`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from corral import __version__
from corral.backends.base import Backend, ClaimedJob, Completion, Retention, WorkerInfo
from corral.context import JobContext
from corral.errors import ConfigurationError
from corral.faults import maybe_crash
from corral.hooks import EventName, listener_name, overrides
from corral.notify.clients import WebhookClients
from corral.options import TaskConfig
from corral.policy import check_queue_name
from corral.serialization import loads
from corral.settings import describe_backend, env_int, env_list
from corral.worker.dispatch import Dispatcher, error_of, run_shutdown, run_startup
from corral.worker.events import EmitsEvents
from corral.worker.executor import Kind, Outcome, execute, log_outcome, stopped
from corral.worker.isolation import IsolationSettings, ProcessPool
from corral.worker.park import park
from corral.worker.prefetch import Prefetch
from corral.worker.scheduler import Scheduler
from corral.worker.supervise import report, supervise
from corral.worker.threads import JobThreads

if TYPE_CHECKING:
    from corral.app import Corral
    from corral.task import Task

__all__ = ["Worker"]

log = logging.getLogger("corral.worker")
job_log = logging.getLogger("corral.job")

#: How long a claimed job stays leased without renewal (renewed every quarter of it).
DEFAULT_LEASE = 8.0
#: After ``grace``, the last recording steps of a stop get this long; then it ends.
_FINAL_STEPS = 2.0


if sys.version_info >= (3, 12):

    def _start_task(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[None]:
        # Run the job up to its first await now, not a turn of the loop later.
        return asyncio.Task(coro, loop=loop, eager_start=True)

else:

    def _start_task(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[None]:
        return loop.create_task(coro)


@dataclass(slots=True)
class _Running:
    claimed: ClaimedJob
    ctx: JobContext
    config: TaskConfig | None
    is_async: bool
    task: asyncio.Task[None] | None = None
    executing: bool = True
    started: float = field(default_factory=time.monotonic)


class Worker(EmitsEvents):
    """Runs the jobs of some queues of an app until stopped.

    ``queues`` are served in the order given (a job of the first queue is always
    claimed before one of the second); default: ``CORRAL_QUEUES``, else every queue
    of the app's tasks. ``concurrency`` (default ``CORRAL_CONCURRENCY``, else 10)
    bounds jobs running at once (a sync job's thread stuck past its timeout does not
    count). ``lease`` is how long a claimed job stays ours without renewal (renewed
    every lease/4; stalled jobs are looked for every min(1 s, lease/4), so a dead
    worker's jobs run again within about lease + 1 s); a job whose lease expires more
    than ``max_stalls`` times fails. On stop, running jobs get ``grace`` seconds to
    finish before they are handed back to waiting, and the whole stop takes at most
    about ``grace`` + 2 s, even with the store down (leases then take over), plus
    whatever the app's listeners (up to 2 s more) and ``on_shutdown`` hooks take.
    ``isolation`` tunes the child processes of isolated tasks (see
    :class:`~corral.worker.isolation.IsolationSettings`). ``prefetch``: how many jobs
    may be claimed ahead of free slots (default: half the concurrency while jobs
    average under 50 ms, else none; 0 never; see :mod:`corral.worker.prefetch`).
    """

    def __init__(
        self,
        app: Corral,
        queues: Sequence[str] | None = None,
        *,
        concurrency: int | None = None,
        lease: float = DEFAULT_LEASE,
        max_stalls: int = 1,
        grace: float = 30.0,
        block: float = 5.0,
        heartbeat: float = 5.0,
        isolation: IsolationSettings | None = None,
        prefetch: int | None = None,
    ) -> None:
        self.app = app
        chosen = list(queues or env_list("CORRAL_QUEUES") or self._task_queues(app))
        # Queues a listener needs served (notification deliveries) come first: they are
        # short, and a backlog of the app's own jobs must not hold them up.
        chosen = [q for listener in app.listeners for q in listener.queues] + chosen
        self.queues = [check_queue_name(q) for q in dict.fromkeys(chosen)]
        if concurrency is None:
            concurrency = env_int("CORRAL_CONCURRENCY") or 10
        self.concurrency = concurrency
        if self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be >= 1, got {self.concurrency}")
        if lease <= 0 or grace < 0 or max_stalls < 0 or block <= 0 or heartbeat <= 0:
            raise ConfigurationError(
                "lease, block and heartbeat must be > 0; grace, max_stalls >= 0"
            )
        self.lease_ms = int(lease * 1000)
        self.max_stalls = max_stalls
        self.grace = grace
        self.block = block
        self.heartbeat = heartbeat
        self.reap_every = min(1.0, lease / 4)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.processed = 0
        self.failed = 0
        self._running: dict[tuple[str, str], _Running] = {}
        if prefetch is not None and prefetch < 0:
            raise ConfigurationError(f"prefetch must be >= 0, got {prefetch}")
        self._prefetch = Prefetch(concurrency, prefetch)
        self._unacked: dict[tuple[str, str], str] = {}
        self._acks: dict[tuple[str, Retention], list[tuple[Completion, _Running]]] = {}
        self._ack_wake = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._stop = asyncio.Event()
        self._hard_stop = asyncio.Event()
        self._closing = asyncio.Event()
        self._threads = JobThreads()
        #: Child processes for isolated tasks (none started until one runs).
        self._children = ProcessPool(isolation)
        self._stop_at: float | None = None  # time.monotonic() of the first stop()
        self._rng = random.Random()
        self._backend: Backend | None = None
        self._loop: asyncio.AbstractEventLoop  # set by run()
        self._started_ms = int(time.time() * 1000)
        #: What the app's ``on_startup`` hooks stored; tasks see it as ``ctx.worker_state``.
        self.state: dict[str, Any] = {}
        self._hooks = Dispatcher()  # the app's listeners, from run()
        self._hook_threads = JobThreads("corral-hook")

    @staticmethod
    def _task_queues(app: Corral) -> list[str]:
        return [task.queue for task in app.tasks.values()] or [app.default_queue]

    # -- control --------------------------------------------------------------------

    def stop(self, *, graceful: bool = True) -> None:
        """Ask the worker to stop (call on its loop; a signal handler does).

        Graceful: stop claiming, let running jobs finish within ``grace`` seconds,
        hand the rest back. A second call, or ``graceful=False``, stops at once.
        """
        if self._stop.is_set() or not graceful:
            self._hard_stop.set()
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        self._stop.set()

    @property
    def active(self) -> int:
        return len(self._running)

    async def run(self) -> None:
        """Run until :meth:`stop`; connects first (raising ConnectionFailed)."""
        # Webhook deliveries (and Webhook.send in tasks) keep their connections open
        # for the worker's life; closed after the shutdown hooks.
        webhooks = WebhookClients()
        with webhooks.installed():
            try:
                await self._run()
            finally:
                await webhooks.aclose()

    async def _run(self) -> None:
        backend = self._backend = await self.app.backend()
        self._loop = asyncio.get_running_loop()
        self._hooks = Dispatcher(self.app.listeners)
        # Raises WorkerStartupFailed: nothing is claimed, no shutdown hook runs.
        await run_startup(self.app.startup_hooks, self.state, self._hook_threads)
        stop_watching = await backend.watch_cancellations(self.queues, self._on_cancel)
        loops: list[tuple[str, Callable[[Backend], Awaitable[None]]]] = [
            ("scheduler", self._schedule_loop),
            ("acks", self._ack_loop),
            ("leases", self._lease_loop),
            ("reaper", self._reap_loop),
            ("heartbeat", self._heartbeat_loop),
        ]
        for listener in self._hooks.listeners:
            if overrides(listener, "serve"):
                serve = partial(listener.serve, queues=self.queues, closing=self._closing)
                loops.append((listener_name(listener), serve))
        loop_tasks = [
            asyncio.create_task(
                supervise(name, partial(fn, backend), self._closing), name=f"corral-{name}"
            )
            for name, fn in loops
        ]
        log.info(
            "worker %s started: queues=%s concurrency=%d lease=%.1fs loop=%s backend=%s",
            self.id,
            ",".join(self.queues),
            self.concurrency,
            self.lease_ms / 1000,
            type(self._loop).__module__.partition(".")[0],
            describe_backend(self.app.url),
        )
        fetching = asyncio.create_task(self._fetch_loop(backend), name="corral-fetch")
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([fetching, stopping], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self.stop(graceful=False)
            raise
        finally:
            stopping.cancel()
            try:
                await self._shutdown(backend, fetching, loop_tasks, stop_watching)
            finally:
                await self._hooks.drain(_FINAL_STEPS)
                await run_shutdown(
                    self.app.shutdown_hooks,
                    self.state,
                    self._hook_threads,
                    self.app.callback_timeout,
                )
                self._hook_threads.shutdown()

    async def _shutdown(
        self,
        backend: Backend,
        fetching: asyncio.Task[None],
        loop_tasks: list[asyncio.Task[None]],
        stop_watching: Callable[[], Awaitable[None]],
    ) -> None:
        """Stop within ``grace`` (+ a little for the last recording steps), whatever
        the store does: after that, leases take over."""
        self._stop.set()
        waited = time.monotonic() - (self._stop_at or time.monotonic())
        deadline = self._loop.time() + max(0.0, self.grace - waited)
        hard = self._loop.call_at(deadline, self._hard_stop.set)
        try:
            async with asyncio.timeout_at(deadline + _FINAL_STEPS):
                try:
                    await fetching  # returns soon after the stop
                except Exception:
                    log.exception("the fetch loop failed; stopping the worker")
                await self._drain_running(backend)
                try:
                    await stop_watching()
                except Exception as exc:
                    report("could not stop watching for cancellations", exc)
                # The loops finish their current step and exit: cancelling one in the
                # middle of a backend call could lose an acknowledgement.
                self._closing.set()
                self._ack_wake.set()
                await asyncio.wait(loop_tasks)
                await self._flush_acks(backend)
                try:
                    await backend.unregister_worker(self.id)
                except Exception as exc:
                    report("could not remove the worker record", exc)
        except TimeoutError:
            log.error(
                "could not finish stopping within grace (%.0fs); the leases of unrecorded "
                "jobs will expire and the jobs run again",
                self.grace,
            )
        finally:
            hard.cancel()
            self._closing.set()
            for task in [fetching, *loop_tasks, *(r.task for r in self._running.values())]:
                if task is not None:
                    task.cancel()
            self._threads.shutdown()
            self._children.close()
            log.info("worker %s stopped (processed %d)", self.id, self.processed)

    # -- fetching -------------------------------------------------------------------

    async def _fetch_loop(self, backend: Backend) -> None:
        retry_in = 0.1
        idle: float | None = None  # set: wait up to this long for work, then claim
        stop_wait = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                free = self.concurrency - len(self._running) + self._prefetch.room()
                if free <= 0:
                    self._slot_free.clear()
                    await asyncio.wait(
                        [stop_wait, asyncio.ensure_future(self._slot_free.wait())],
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    continue
                try:
                    if idle is None:
                        claimed, due_in = await self._claim(backend, free)
                    else:
                        claimed, due_in = await self._wait_and_claim(backend, idle, free)
                except Exception as exc:  # the store, or a bug: the worker goes on
                    report(f"cannot fetch jobs; retrying in {retry_in:.1f}s", exc)
                    await asyncio.wait([stop_wait], timeout=retry_in)
                    retry_in = min(retry_in * 2, 5.0)
                    idle = None
                    continue
                retry_in = 0.1
                # Nothing claimed: block until woken. A wait claims from the first queue
                # only, so with several queues a woken worker claims from all of them.
                if claimed or (idle is not None and len(self.queues) > 1):
                    idle = None
                else:
                    timeout = self.block if due_in is None else min(self.block, due_in / 1000)
                    idle = max(timeout, 0.005)
        finally:
            stop_wait.cancel()

    async def _wait_and_claim(
        self, backend: Backend, timeout: float, free: int
    ) -> tuple[int, int | None]:
        jobs, due_in = await backend.wait_and_claim(
            self.queues, timeout, free, self.lease_ms, self.id, self._stop
        )
        if jobs and self._stop.is_set():
            # Woken by the stop itself: hand these back without spending an attempt.
            for (queue, kept), leases in self._leases([(job, None) for job in jobs]).items():
                await backend.release(queue, leases, kept)
            return 0, None
        if jobs:
            maybe_crash("after_claim")
        self._take(backend, jobs)
        if jobs:
            # Woken from idle: let the jobs start before the next claim goes out.
            await asyncio.sleep(0)
        return len(jobs), due_in

    async def _claim(self, backend: Backend, free: int) -> tuple[int, int | None]:
        total = 0
        due_in: int | None = None
        for queue in self.queues:
            jobs, queue_due = await backend.claim(queue, free, self.lease_ms, self.id)
            if jobs:
                maybe_crash("after_claim")
            self._take(backend, jobs)
            total += len(jobs)
            free -= len(jobs)
            if queue_due is not None:
                due_in = queue_due if due_in is None else min(due_in, queue_due)
            if free <= 0:
                break
        return total, due_in

    def _take(self, backend: Backend, jobs: Sequence[ClaimedJob]) -> None:
        """Start claimed jobs while slots are free; hold the rest until one frees."""
        for job in jobs:
            if len(self._running) < self.concurrency:
                self._start(backend, job)
            else:
                self._prefetch.ready.append(job)

    def _start(self, backend: Backend, claimed: ClaimedJob) -> None:
        task = self._find_task(claimed.name)
        config: TaskConfig | None = None
        if task is not None:
            try:
                config = task.config.for_job(claimed.options)
            except Exception:
                log.warning("job %s has unreadable options; using task defaults", claimed.id)
                config = task.config
        ctx = JobContext(claimed, backend, self._loop, config.attempts if config else 1, self.state)
        if self._hooks.active:
            ctx._on_progress = self._on_progress
        # An isolated job is awaited on the loop (its child is killed), so it is cancellable.
        cancellable = task is not None and (task.is_async or task.config.isolation is not None)
        running = _Running(claimed, ctx, config, is_async=cancellable)
        self._running[(claimed.queue, claimed.id)] = running
        running.task = _start_task(self._loop, self._run_one(backend, running, task))
        key = (claimed.queue, claimed.id)
        running.task.add_done_callback(lambda _: self._finished(key))

    def _find_task(self, name: str) -> Task[Any, Any] | None:
        try:
            return self.app.find_task(name)
        except Exception:  # a resolver's bug must not stop the worker: the job fails
            log.exception("resolving task %r failed", name)
            return None

    def _finished(self, key: tuple[str, str]) -> None:
        running = self._running.pop(key, None)
        if running is not None:
            self._prefetch.ran(time.monotonic() - running.started)
        ready = self._prefetch.ready
        if ready and not self._stop.is_set() and self._backend is not None:
            self._start(self._backend, ready.popleft())
        self._slot_free.set()

    async def _run_one(self, backend: Backend, running: _Running, task: Any) -> None:
        claimed = running.claimed
        try:
            if running.ctx.cancel_reason is not None:
                # Cancelled while it waited for a slot (prefetched): it never runs.
                outcome = stopped(running.ctx, claimed, self.id) or Outcome(Kind.DROPPED)
                await self._record(backend, running, outcome)
                return
            if self._hooks.active:
                self._emit("started", running)
            run = execute(
                task,
                running.config,
                claimed,
                running.ctx,
                self._threads,
                self._rng,
                self.id,
                self._children,
            )
            tracing = self.app.tracing
            outcome = await (run if tracing is None else tracing.process(claimed, run))
            running.executing = False
            await self._record(backend, running, outcome)
        except asyncio.CancelledError:
            pass
        except Exception:  # the worker must never die because of a job
            log.exception("unexpected error while handling job %s", claimed.id)

    # -- outcomes -------------------------------------------------------------------

    def _cancelled_kept(self, claimed: ClaimedJob, config: TaskConfig | None) -> Retention:
        # Cancelled jobs are kept like completed ones (App.cancelled_retention).
        return config.completed if config else self.app.cancelled_retention(claimed.name)

    def _notifies(self, claimed: ClaimedJob) -> str:
        """The outcomes this app's targets want for the job's task ("" for none)."""
        task = self.app.tasks.get(claimed.name)
        return "" if task is None else self.app.notify_events(task, ())

    def _wrote_outbox(self, claimed: ClaimedJob, notify: str) -> None:
        """Tell the relay an outcome just recorded may have an outbox entry (the task's
        targets, or per-job ones in its options), so it looks at once."""
        if notify or b'"notify"' in claimed.options:
            self.app.outbox_written()

    def _leases(
        self, jobs: Sequence[tuple[ClaimedJob, TaskConfig | None]]
    ) -> dict[tuple[str, Retention], list[tuple[str, str]]]:
        """Leases to hand back, by queue and the retention of the ones that end cancelled."""
        groups: dict[tuple[str, Retention], list[tuple[str, str]]] = {}
        for claimed, config in jobs:
            key = (claimed.queue, self._cancelled_kept(claimed, config))
            groups.setdefault(key, []).append((claimed.id, claimed.token))
        return groups

    async def _record(self, backend: Backend, running: _Running, outcome: Outcome) -> None:
        claimed = running.claimed
        config = running.config
        notify = self._notifies(claimed)
        if outcome.kind is Kind.COMPLETED:
            maybe_crash("before_ack")
            retention = config.completed if config else self.app.completed
            self._unacked[(claimed.queue, claimed.id)] = claimed.token
            item = Completion(claimed.id, claimed.token, outcome.result, notify)
            self._acks.setdefault((claimed.queue, retention), []).append((item, running))
            self._ack_wake.set()
            return
        if outcome.kind is Kind.PARK:
            outcome = await park(backend, claimed, outcome, self.id, self._with_retries)
            if outcome.kind is Kind.PARK:
                return
        if outcome.kind is Kind.DROPPED:
            log.info("job %s (%s) stopped: %s", claimed.id, claimed.name, running.ctx.cancel_reason)
            return
        duration = (time.monotonic() - running.started) * 1000
        if outcome.kind is Kind.CANCELLED:
            kept = self._cancelled_kept(claimed, config)
            accepted = await self._with_retries(
                lambda: backend.abort(
                    claimed.queue,
                    claimed.id,
                    claimed.token,
                    outcome.error,
                    kept,
                    notify,
                )
            )
            log_outcome("cancelled", running.claimed, duration, accepted)
            if accepted:
                self._wrote_outbox(claimed, notify)
            if accepted and self._hooks.active:
                self._emit("cancelled", running, error=error_of(outcome.error))
            return
        maybe_crash("before_fail")
        retention = config.failed if config else self.app.failed
        retry = outcome.retry_in_ms if outcome.kind is Kind.RETRY else None
        accepted = await self._with_retries(
            lambda: backend.fail(
                claimed.queue,
                claimed.id,
                claimed.token,
                outcome.error,
                retry,
                retention,
                count_attempt=outcome.count_attempt,
                cancelled=self._cancelled_kept(claimed, config),
                notify=notify,
            )
        )
        self.failed += outcome.kind is Kind.FAILED
        if accepted and retry is None:
            self._wrote_outbox(claimed, notify)
        verb = "retrying" if retry is not None else "failed"
        log_outcome(verb, running.claimed, duration, accepted, outcome)
        if accepted and self._hooks.active:
            retry_in = None if retry is None else retry / 1000
            event: EventName = "retrying" if retry is not None else "failed"
            self._emit(event, running, error=error_of(outcome.error), retry_in=retry_in)

    async def _with_retries(self, call: Callable[[], Awaitable[bool]]) -> bool:
        """Record an outcome; on backend errors try a few more times, then give up
        (the lease expires and the job runs again: at-least-once)."""
        for delay in (0.2, 1.0, 3.0, None):
            try:
                return await call()
            except Exception as exc:
                if delay is None or self._hard_stop.is_set():
                    report("could not record a job outcome; its lease will expire", exc)
                    return False
                await asyncio.sleep(delay)
        return False

    async def _pause(self, seconds: float) -> bool:
        """Sleep; False when the worker is closing (the loops then exit)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        return not self._closing.is_set()

    async def _ack_loop(self, backend: Backend) -> None:
        while not self._closing.is_set():
            await self._ack_wake.wait()
            self._ack_wake.clear()
            await self._flush_acks(backend)

    async def _flush_acks(self, backend: Backend) -> None:
        while self._acks:
            batch, self._acks = self._acks, {}
            for (queue, retention), items in batch.items():
                try:
                    accepted = await backend.complete(queue, [c for c, _ in items], retention)
                    maybe_crash("after_ack")
                except Exception as exc:
                    if self._hard_stop.is_set():
                        report(f"could not record {len(items)} completions", exc)
                        continue
                    report("could not record completions; retrying", exc)
                    self._acks.setdefault((queue, retention), []).extend(items)
                    await asyncio.sleep(0.5)
                    continue
                for (completion, running), ok in zip(items, accepted, strict=True):
                    # Recorded or rejected: no longer ours.
                    self._unacked.pop((queue, completion.id), None)
                    if ok:
                        self._wrote_outbox(running.claimed, completion.notify)
                self.processed += sum(accepted)
                verbose = job_log.isEnabledFor(logging.INFO)
                for (completion, running), ok in zip(items, accepted, strict=True):
                    if verbose or not ok:
                        duration = (time.monotonic() - running.started) * 1000
                        log_outcome("completed", running.claimed, duration, ok)
                    if ok and self._hooks.active:
                        self._emit("completed", running, result=loads(completion.result))

    # -- leases, cancellation, maintenance --------------------------------------------

    def _held(self) -> dict[str, list[tuple[str, str]]]:
        held: dict[str, list[tuple[str, str]]] = {}
        for (queue, job_id), running in self._running.items():
            held.setdefault(queue, []).append((job_id, running.claimed.token))
        for (queue, job_id), token in self._unacked.items():
            if (queue, job_id) not in self._running:
                held.setdefault(queue, []).append((job_id, token))
        for claimed in self._prefetch.ready:
            held.setdefault(claimed.queue, []).append((claimed.id, claimed.token))
        return held

    async def _lease_loop(self, backend: Backend) -> None:
        interval = self.lease_ms / 4000
        loop = asyncio.get_running_loop()
        expected = loop.time() + interval
        while await self._pause(interval):
            lag = loop.time() - expected
            if lag > interval:
                log.warning(
                    "the event loop was blocked for %.1fs: leases may have expired and their "
                    "jobs may run twice; run blocking or CPU-bound work in a plain (sync) "
                    "task, which runs in a thread",
                    lag,
                )
            for queue, leases in self._held().items():
                try:
                    lost, cancel = await backend.renew(queue, leases, self.lease_ms)
                except Exception as exc:
                    report("could not renew leases", exc)
                    continue
                for job_id in lost:
                    # A job whose completion was just recorded also reads as "lost".
                    if self._prefetch.take(queue, job_id) is not None:
                        log.warning("lost the lease of job %s before it started", job_id)
                    elif (queue, job_id) in self._running:
                        self._interrupt(queue, job_id, "lost")
                        log.warning("lost the lease of job %s; another worker may run it", job_id)
                for job_id in cancel:
                    self._interrupt(queue, job_id, "cancelled")
            # Measured from here: a slow renewal round trip is not event-loop lag.
            expected = loop.time() + interval

    def _on_cancel(self, queue: str, job_id: str) -> None:
        self._interrupt(queue, job_id, "cancelled")

    def _interrupt(self, queue: str, job_id: str, reason: str) -> None:
        held = self._prefetch.take(queue, job_id)
        if held is not None and self._backend is not None:
            # Not started yet: it starts now, already asked to stop, and only records that.
            self._start(self._backend, held)
            self._running[(queue, job_id)].ctx._request_cancel(reason)
            return
        running = self._running.get((queue, job_id))
        if running is None or not running.executing:
            return
        running.ctx._request_cancel(reason)
        # Async tasks are cancelled; a sync task's thread can't be, it sees ctx.cancelled.
        if running.is_async and running.task is not None:
            running.task.cancel()

    async def _reap_loop(self, backend: Backend) -> None:
        # Often (a ZRANGEBYSCORE when nothing stalled): it bounds how long the jobs of
        # a dead worker wait, together with the lease. Apart from the heartbeat, so
        # recovering stalled jobs does not depend on it.
        while await self._pause(self.reap_every):
            for queue in self.queues:
                try:
                    # No task at hand here: the app's retentions apply (decisions.md, session 9).
                    requeued, failed = await backend.reap_stalled(
                        queue, self.max_stalls, self.app.failed, self.app.cancelled_retention()
                    )
                except Exception as exc:
                    report("could not recover stalled jobs", exc)
                    continue
                try:
                    # Outcomes of this queue's flow jobs for dependents in other queues.
                    await backend.pass_handoffs(queue)
                except Exception as exc:
                    report("could not pass flow outcomes on", exc)
                try:
                    # Records of flows whose last job retention (or a removal) deleted.
                    await backend.prune_flows(queue)
                except Exception as exc:
                    report("could not delete the records of finished flows", exc)
                if (requeued or failed) and self._hooks.active:
                    await self._emit_reaped(backend, queue, requeued, failed)
                if requeued or failed:
                    log.warning(
                        "recovered stalled jobs in %s: %d back to waiting, %d failed",
                        queue,
                        len(requeued),
                        len(failed),
                    )

    async def _heartbeat_loop(self, backend: Backend) -> None:
        while not self._closing.is_set():
            try:
                await backend.register_worker(self._info(), int(self.heartbeat * 3000))
            except Exception as exc:
                report("could not refresh the worker record", exc)
            await self._pause(self.heartbeat)

    async def _schedule_loop(self, backend: Backend) -> None:
        scheduler = Scheduler(self.app, backend, self.queues)
        declared = False
        wait = 0.0
        while await self._pause(wait):
            try:
                if not declared:
                    await scheduler.declare()
                    declared = True
                wait = await scheduler.tick()
            except Exception as exc:  # the store, or a scheduling bug: the worker goes on
                report("scheduler: could not run the schedules; retrying in 1s", exc)
                wait = 1.0

    def _info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self.queues,
            concurrency=self.concurrency,
            started_at=self._started_ms,
            last_seen=int(time.time() * 1000),
            active=len(self._running),
            processed=self.processed,
            failed=self.failed,
            stuck=self._threads.stuck,
            jobs=[*self._running, *((c.queue, c.id) for c in self._prefetch.ready)],
            version=__version__,
            children=self._children.children,
        )

    # -- shutdown -------------------------------------------------------------------

    async def _drain_running(self, backend: Backend) -> None:
        held = list(self._prefetch.ready)
        self._prefetch.ready.clear()
        for (queue, kept), leases in self._leases([(job, None) for job in held]).items():
            try:
                await backend.release(queue, leases, kept)
            except Exception as exc:
                report("could not hand jobs back; their leases will expire", exc)
        # _hard_stop is set by a second stop() or when grace runs out.
        if self._running and not self._hard_stop.is_set():
            log.info("waiting up to %.0fs for %d running jobs", self.grace, len(self._running))
            hard = asyncio.ensure_future(self._hard_stop.wait())
            while self._running and not hard.done():
                tasks = [r.task for r in self._running.values() if r.task is not None]
                await asyncio.wait([*tasks, hard], return_when=asyncio.FIRST_COMPLETED)
            hard.cancel()
        if not self._running:
            return
        # A job whose function has returned is recording its outcome (its task ends a
        # turn of the loop later): handing it back would make its recording fail and
        # run it again. Only jobs still executing are handed back.
        recording = [r for r in self._running.values() if not r.executing]
        leftovers = [r for r in self._running.values() if r.executing]
        for running in leftovers:
            running.ctx._request_cancel("shutdown")
            if running.is_async and running.task is not None:
                running.task.cancel()
        by_queue = self._leases([(r.claimed, r.config) for r in leftovers])
        for (queue, kept), leases in by_queue.items():
            try:
                released = await backend.release(queue, leases, kept)
                log.info("handed %d unfinished jobs of %s back to waiting", released, queue)
            except Exception as exc:
                report("could not hand jobs back; their leases will expire", exc)
        pending = [r.task for r in leftovers if r.task is not None and r.is_async]
        pending += [r.task for r in recording if r.task is not None]
        if pending:
            await asyncio.wait(pending, timeout=1.0)
