"""Bulk actions on a whole filter, run in the background of the server process so the
page can show their progress.

A run is an asyncio task of the process that received the confirmed post; its page
polls ``/queues/{q}/bulk/{token}`` for the progress. Runs live in this process's
memory only: behind several server processes, a poll that reaches another one says the
run is not known there (the run itself goes on).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from corral.errors import CorralError
from corral.search import BulkResult

__all__ = ["BulkRun", "BulkRuns", "Progress"]

log = logging.getLogger("corral.web")

#: Finished runs are forgotten after this many seconds.
KEEP_SECONDS = 600.0
#: Runs kept at most (the oldest finished ones go first).
MAX_RUNS = 100

Progress = Callable[[int, int], object]


@dataclass
class BulkRun:
    """One bulk action under way (or done): what it does and how far it got."""

    queue: str
    action: str
    summary: str
    #: Jobs in the state when the run began (the progress bar's end, roughly).
    total: int = 0
    #: The queue page's query to go back to (the search criteria).
    back: str = ""
    #: Jobs of the state gone through so far, and matches found so far.
    done: int = 0
    matched: int = 0
    result: BulkResult | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.finished is None

    def progress(self, done: int, matched: int) -> None:
        self.done, self.matched = done, matched


class BulkRuns:
    """The runs of one app (``app.state.corral_bulk_runs``), by an unguessable token."""

    def __init__(self) -> None:
        self.runs: dict[str, BulkRun] = {}

    def start(self, run: BulkRun, work: Callable[[Progress], Awaitable[BulkResult]]) -> str:
        """Start ``work(progress)`` for ``run``; returns the run's token."""
        self._trim()
        token = secrets.token_urlsafe(12)
        self.runs[token] = run

        async def go() -> None:
            try:
                run.result = await work(run.progress)
            except CorralError as exc:
                run.error = str(exc)
            except Exception:
                log.exception("bulk %s on queue %s failed", run.action, run.queue)
                run.error = "internal error (the server's log has the details)"
            finally:
                run.finished = time.monotonic()

        run.task = asyncio.get_running_loop().create_task(go(), name=f"corral-bulk-{token}")
        return token

    def get(self, token: str) -> BulkRun | None:
        return self.runs.get(token)

    def _trim(self) -> None:
        now = time.monotonic()
        for token, run in list(self.runs.items()):
            if run.finished is not None and now - run.finished > KEEP_SECONDS:
                del self.runs[token]
        finished = sorted(
            (t for t, r in self.runs.items() if r.finished is not None),
            key=lambda t: self.runs[t].started,
        )
        while len(self.runs) >= MAX_RUNS and finished:
            del self.runs[finished.pop(0)]
