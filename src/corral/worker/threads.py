"""The threads that run sync tasks.

Not a ``ThreadPoolExecutor``: a thread whose job timed out cannot be stopped, and
in a fixed pool it would keep its slot, so once ``concurrency`` threads were stuck
every new sync job would wait for ever; its threads are also joined at interpreter
exit, so one stuck thread would keep a stopped worker's process alive. Here a thread
is started whenever none is idle (the worker's concurrency bounds the jobs in
flight, not this pool), idle threads are reused, and all are daemon threads.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["JobThreads"]

log = logging.getLogger("corral.worker")

T = TypeVar("T")
_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class JobThreads:
    """Daemon threads for sync tasks, started as needed and reused when idle."""

    def __init__(self, prefix: str = "corral-job") -> None:
        self._prefix = prefix
        self._work: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for work, less the items queued for them
        self._started = 0
        self._stuck = 0
        self._closed = False

    @property
    def stuck(self) -> int:
        """Threads still running a job that stopped waiting for them (timed out)."""
        return self._stuck

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on an idle thread, or a new one."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the job threads are shut down")
            self._work.put((future, fn, args))
            if self._idle:
                self._idle -= 1
                return future
            self._started += 1
            name = f"{self._prefix}-{self._started}"
        threading.Thread(target=self._serve, name=name, daemon=True).start()
        return future

    def _serve(self) -> None:
        while (item := self._work.get()) is not None:
            future, fn, args = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as exc:  # handed to the waiter, like an executor
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn, args
            with self._lock:
                if self._closed:
                    return
                self._idle += 1

    def abandon(self, future: Future[Any], job: str, why: str) -> None:
        """The job of ``future`` stopped waiting for it (``why``: a timeout, a stop):
        its thread counts as stuck, and is logged, until the function returns."""
        with self._lock:
            if future.done():
                return
            self._stuck += 1
            stuck = self._stuck
        log.warning(
            "job %s ended (%s), but its thread is still running: a sync function cannot "
            "be interrupted (it can check ctx.cancelled); %d stuck thread(s)",
            job,
            why,
            stuck,
        )
        since = time.monotonic()

        def returned(_: Future[Any]) -> None:
            with self._lock:
                self._stuck -= 1
            log.info(
                "the thread of job %s returned %.1fs after the job stopped waiting",
                job,
                time.monotonic() - since,
            )

        future.add_done_callback(returned)

    def shutdown(self) -> None:
        """Let idle threads exit; busy ones end with their job or with the process."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, 0
        for _ in range(idle):
            self._work.put(None)
