"""How a worker calls the lifecycle listeners and its startup/shutdown hooks.

Every event goes through :meth:`Dispatcher.emit`: it returns at once, each listener
runs in a task of its own (bounded by its ``timeout``, its errors logged), so a
listener can neither fail a job, nor hold up the claim loop or another listener. A
listener hears a job's events in order: each call waits for its previous one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from corral.callbacks import call_hook
from corral.context import JobContext
from corral.errors import WorkerStartupFailed
from corral.hooks import EVENTS, JobEvent, Lifecycle, accepts, listener_name, overrides
from corral.worker.threads import JobThreads

__all__ = ["Dispatcher", "error_of", "run_shutdown", "run_startup"]

log = logging.getLogger("corral.hooks")


def error_of(record: bytes) -> dict[str, Any] | None:
    """A stored error record as a dict (None when unreadable)."""
    try:
        value = orjson.loads(record)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class Dispatcher:
    """Delivers a worker's job events to its app's listeners."""

    def __init__(self, listeners: Sequence[Lifecycle] = ()) -> None:
        self.listeners = list(listeners)
        # Per event, the listeners that override it (by their index): one that only
        # serves in the background (the notification relay) costs no job anything.
        self._hearing = {
            event: [(i, one) for i, one in enumerate(self.listeners) if overrides(one, event)]
            for event in EVENTS
        }
        #: False: no listener hears any event, so the worker builds no event at all.
        self.active = any(self._hearing.values())
        self._pending: set[asyncio.Task[None]] = set()

    def emit(self, event: JobEvent, ctx: JobContext | None = None) -> None:
        """Hand ``event`` to every listener of it, each in a task of its own."""
        hearing = self._hearing[event.event]
        if not hearing:
            return
        loop = asyncio.get_running_loop()
        last = ctx._hooks_last if ctx is not None else None
        if last is None:
            last = {}
            if ctx is not None:
                ctx._hooks_last = last
        for index, listener in hearing:
            task = loop.create_task(self._call(listener, event, last.get(index)))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            last[index] = task

    @staticmethod
    async def _call(listener: Lifecycle, event: JobEvent, after: asyncio.Task[None] | None) -> None:
        if after is not None and not after.done():
            # This listener's previous call for the job first (bounded by its timeout):
            # a slow listener delays only itself.
            await asyncio.wait([after])
        method: Callable[[JobEvent], Any] = getattr(listener, event.event)
        try:
            async with asyncio.timeout(listener.timeout):
                await method(event)
        except TimeoutError:
            log.error(
                "listener %s took longer than %gs on %s of job %s; abandoned",
                listener_name(listener),
                listener.timeout,
                event.event,
                event.job_id,
            )
        except Exception:
            log.exception(
                "listener %s failed on %s of job %s",
                listener_name(listener),
                event.event,
                event.job_id,
            )

    async def drain(self, timeout: float) -> None:
        """Let the listeners still running finish within ``timeout``; cancel the rest."""
        if not self._pending:
            return
        pending = list(self._pending)
        _, late = await asyncio.wait(pending, timeout=timeout)
        if late:
            log.warning("stopping: %d listener call(s) still running were cancelled", len(late))
            for task in late:
                task.cancel()
            await asyncio.wait(late, timeout=1.0)


def _args(fn: Callable[..., Any], state: dict[str, Any]) -> tuple[Any, ...]:
    return (state,) if accepts(fn, 1) else ()


async def run_startup(
    hooks: Sequence[Callable[..., Any]], state: dict[str, Any], threads: JobThreads
) -> None:
    """Run the startup hooks in order; a returned dict is merged into ``state``.
    Raises WorkerStartupFailed (one line, naming the hook) at the first that raises."""
    for fn in hooks:
        try:
            value = await call_hook(fn, _args(fn, state), threads)
        except Exception as exc:
            raise WorkerStartupFailed(
                f"on_startup hook {listener_name(fn)} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(value, dict):
            state.update(value)


async def run_shutdown(
    hooks: Sequence[Callable[..., Any]],
    state: dict[str, Any],
    threads: JobThreads,
    timeout: float,
) -> None:
    """Run the shutdown hooks in order, each bounded by ``timeout``; errors are logged."""
    for fn in hooks:
        try:
            async with asyncio.timeout(timeout):
                await call_hook(fn, _args(fn, state), threads)
        except TimeoutError:
            log.error(
                "on_shutdown hook %s took longer than %gs; abandoned", listener_name(fn), timeout
            )
        except Exception:
            log.exception("on_shutdown hook %s failed", listener_name(fn))
