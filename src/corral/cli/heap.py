"""The long-running processes' garbage-collector setting."""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


def settle_heap() -> None:
    """Move everything built so far (imports, the app, its tasks, routes and schemas:
    tens of thousands of objects) out of the garbage collector's sight. Without it each
    full collection walks them all with the event loop stopped: 50-100 ms pauses in
    ``corral serve`` under load (its p99), and in a worker draining jobs ~20 % of the
    time went to full collections (``bench/RESULTS.md``). They live as long as the
    process; what jobs and requests allocate is collected as before.

    The youngest generation is collected every 10,000 allocations instead of 700: a
    request or a job allocates hundreds of short-lived objects, and each young
    collection promoted the ones still in flight, which then cost full collections
    (one or two a second, of 7-40 ms, in ``corral serve`` at 1,500 requests/s). With
    ``wrk`` on ``POST /api/v1/jobs``: ~5 % more requests/s, p99 ~10 % lower."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
