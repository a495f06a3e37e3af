"""Keeping the worker's background loops alive.

A loop that dies silently is worse than a crash: a worker whose lease loop stopped
still looks alive while its jobs' leases expire and the jobs run twice. So each loop
handles the failure of one step itself (:func:`report`, then the next step), and
:func:`supervise` restarts a loop that raises anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from corral.errors import BackendError, ConnectionFailed

__all__ = ["report", "supervise"]

log = logging.getLogger("corral.worker")


def report(what: str, exc: Exception) -> None:
    """Log a failed step: a store problem in one line, anything else with its
    traceback. An outage the backend reports itself (one line when it begins, one
    when it ends) is not repeated for each step it fails, however long it lasts."""
    if isinstance(exc, ConnectionFailed) and exc.reported:
        log.debug("%s (%s)", what, exc)
    elif isinstance(exc, BackendError):
        log.warning("%s (%s)", what, exc)
    else:
        log.error("%s: unexpected error", what, exc_info=exc)


async def supervise(name: str, loop: Callable[[], Awaitable[None]], closing: asyncio.Event) -> None:
    """Run ``loop()`` until ``closing`` is set; restart it (after a short, growing
    pause) whenever it raises or returns early."""
    pause = 0.1
    while not closing.is_set():
        try:
            await loop()
        except Exception as exc:
            log.error("the %s loop failed; restarting it", name, exc_info=exc)
        else:
            if closing.is_set():
                return
            log.error("the %s loop ended unexpectedly; restarting it", name)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(pause):
                await closing.wait()
        pause = min(pause * 2, 5.0)
