"""Keyset paging over one state of a queue, shared by every backend.

A page starts after a *position*: the sort key of the last row the caller saw (its
score and id, and on Redis where in the waiting line it sits). A job that moves
between two page reads therefore never shifts the rows of the next page: jobs that
stay in the state are each read exactly once, whatever else changes. Positions are
plain tuples of ints and text, opaque above the seam (``corral.search`` wraps them in
a url-safe cursor); each backend checks the shape of one it is given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from corral.backends.records import JobRecord, JobState
from corral.errors import ValidationError

__all__ = ["PageSlice", "Position", "ScanSlice", "ScansPages", "check_position", "scan_pages"]

#: A row's sort key; what a backend needs to start the next page right after it.
Position = tuple[int | str, ...]

#: Rows a scan reads per backend call (one round trip / one transaction each).
SCAN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class PageSlice:
    """Up to ``limit`` jobs in listing order, the position of each, and ``next``:
    where the following page starts (None when no job follows). ``read`` counts the
    rows read, with any that left the state before their record was read (Redis reads
    the line, then the records) and so are not in ``jobs``."""

    jobs: list[JobRecord]
    positions: list[Position]
    next: Position | None
    read: int


@dataclass(frozen=True, slots=True)
class ScanSlice:
    """What a bounded scan found: the matching jobs, where to resume (None when the
    state was read to its end) and how many jobs it read."""

    jobs: list[JobRecord]
    resume: Position | None
    scanned: int


def check_position(position: Position, kinds: tuple[type, ...], state: JobState) -> Position:
    """``position`` if it has the shape ``kinds`` (one type per item), else a
    ValidationError: a cursor from another state, backend or a damaged one."""
    if len(position) != len(kinds) or not all(
        type(v) is k for v, k in zip(position, kinds, strict=True)
    ):
        raise ValidationError(f"cursor does not fit the {state.value} jobs of this store")
    return position


async def scan_pages(
    page: Callable[[Position | None, int], Awaitable[PageSlice]],
    after: Position | None,
    limit: int,
    scan: int,
    match: Callable[[JobRecord], bool],
) -> ScanSlice:
    """Read pages from ``after`` until ``limit`` jobs match or ``scan`` jobs were read
    (never more); resume at the last job read."""
    found: list[JobRecord] = []
    scanned = 0
    position = after
    while scanned < scan:
        chunk = await page(position, min(SCAN_CHUNK, scan - scanned))
        for i, (job, at) in enumerate(zip(chunk.jobs, chunk.positions, strict=True)):
            if match(job):
                found.append(job)
                if len(found) == limit:
                    last = i == len(chunk.jobs) - 1
                    more = not last or chunk.next is not None
                    read = chunk.read if last else i + 1
                    return ScanSlice(found, at if more else None, scanned + read)
        scanned += chunk.read
        if chunk.next is None:
            return ScanSlice(found, None, scanned)
        position = chunk.next
    return ScanSlice(found, position, scanned)


class ScansPages:
    """``Backend.scan_jobs`` for a backend mixin whose ``page_jobs`` does the reading
    (every backend: a scan is pages read until enough match)."""

    async def page_jobs(
        self, queue: str, state: JobState, after: Position | None, limit: int
    ) -> PageSlice:
        raise NotImplementedError  # provided by the backend's paging mixin

    async def scan_jobs(
        self,
        queue: str,
        state: JobState,
        after: Position | None,
        limit: int,
        scan: int,
        match: Callable[[JobRecord], bool],
    ) -> ScanSlice:
        async def page(position: Position | None, n: int) -> PageSlice:
            return await self.page_jobs(queue, state, position, n)

        return await scan_pages(page, after, limit, scan, match)
