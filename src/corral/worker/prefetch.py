"""Jobs claimed ahead of free slots, while the worker's jobs are short.

A worker whose jobs take a few milliseconds spends a round trip per batch waiting
for its next claim with every slot free. Claiming up to ``concurrency / 2`` more
while jobs run hides that wait: a slot that frees starts a job at once. Long jobs
get no prefetch (a job claimed ahead would wait for a slot while another worker
might be idle), so it switches itself on only while the recent jobs averaged under
:data:`SHORT` seconds. Jobs held here are leased like running ones (renewed, handed
back on stop).
"""

from __future__ import annotations

from collections import deque

from corral.backends.base import ClaimedJob

__all__ = ["SHORT", "Prefetch"]

#: Prefetch only while jobs average less than this (seconds).
SHORT = 0.05
#: Weight of the newest job in the running average of job durations.
_WEIGHT = 0.05


class Prefetch:
    """The claimed jobs waiting for a slot, and how many more may be claimed ahead.

    ``limit``: a fixed number of jobs (0 turns prefetching off); None: half the
    concurrency while jobs are short, else none.
    """

    def __init__(self, concurrency: int, limit: int | None = None) -> None:
        self._auto = concurrency // 2
        self.limit = limit
        self.ready: deque[ClaimedJob] = deque()
        # Unknown at first: counted as long until short jobs have been seen.
        self._average = 1.0

    def ran(self, seconds: float) -> None:
        """Note how long a job ran."""
        self._average += (seconds - self._average) * _WEIGHT

    def room(self) -> int:
        """How many more jobs may be claimed ahead of free slots."""
        if self.limit is not None:
            wanted = self.limit
        else:
            wanted = self._auto if self._average < SHORT else 0
        return max(0, wanted - len(self.ready))

    def take(self, queue: str, job_id: str) -> ClaimedJob | None:
        """Remove and return the held job ``job_id`` of ``queue`` (None: not held)."""
        for claimed in self.ready:
            if claimed.id == job_id and claimed.queue == queue:
                self.ready.remove(claimed)
                return claimed
        return None
