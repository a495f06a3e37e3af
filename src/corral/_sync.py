"""The one sync portal: every blocking ``*_sync`` call runs on a background loop.

Sync code (Flask, Django, scripts) gets the same client as async code without a
hand-written twin of any class: each ``*_sync`` method submits the async method's
coroutine to one event-loop thread shared by the process.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from corral.errors import CorralError

__all__ = ["run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _portal_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="corral-sync", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def _forget_in_child() -> None:
    # The parent's loop thread does not exist in a forked child: start afresh.
    global _lock, _loop
    _lock = threading.Lock()
    _loop = None


os.register_at_fork(after_in_child=_forget_in_child)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the portal loop and block until it is done."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()
        raise CorralError(
            "a *_sync method was called from async code: await the async method instead"
        )
    return asyncio.run_coroutine_threadsafe(coro, _portal_loop()).result()
