"""Queue history for charts: completed and failed jobs and the p95 run time, per minute
over the last hour or per fifteen minutes over the last day.

The backends keep outcome counts per time slot with a run-time histogram (bucket
bounds ``DURATION_BUCKETS``), so a p95 over any number of slots is read from the
merged histogram instead of averaging per-slot percentiles.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal, NamedTuple

from corral.backends.records import DURATION_BUCKETS, HistoryWindow
from corral.errors import ValidationError

__all__ = ["SPANS", "History", "HistoryPoint", "Span", "percentile", "span_window"]

Span = Literal["hour", "day"]

#: Each span's slot width (ms) and number of slots.
SPANS: dict[str, tuple[int, int]] = {"hour": (60_000, 60), "day": (900_000, 96)}

_BOUNDS_MS = [bound * 1000 for bound in DURATION_BUCKETS]


def span_window(span: object) -> tuple[int, int]:
    """(slot width in ms, number of slots) of ``span``; ValidationError (a ValueError)
    naming the choices for anything else."""
    window = SPANS.get(span) if isinstance(span, str) else None
    if window is None:
        raise ValidationError(f"span must be 'hour' or 'day', got {span!r}")
    return window


def percentile(buckets: Sequence[int], fraction: float = 0.95) -> float | None:
    """The run time (ms) below which ``fraction`` of the counted runs fall, read from a
    histogram (counts per ``DURATION_BUCKETS`` bucket, then the overflow), interpolated
    linearly inside its bucket; None when nothing was counted. Runs past the last bound
    report that bound (the histogram knows no more)."""
    running = list(accumulate(buckets))
    total = running[-1] if running else 0
    if total == 0:
        return None
    rank = fraction * total
    index = bisect_left(running, rank)  # the first bucket whose running count reaches it
    if index >= len(_BOUNDS_MS):
        return _BOUNDS_MS[-1]
    n = buckets[index]
    lower = _BOUNDS_MS[index - 1] if index else 0.0
    upper = _BOUNDS_MS[index]
    return round(lower + (upper - lower) * (rank - running[index] + n) / n, 2)


class HistoryPoint(NamedTuple):
    """One time slot: ``ts`` (ms since the epoch, the slot's start), jobs completed and
    failed for good in it, and the p95 run time of its completions (ms, None if none).
    (A named tuple: a day of 200 queues is 19,200 of them.)"""

    ts: int
    completed: int
    failed: int
    p95_ms: float | None


@dataclass(frozen=True, slots=True)
class History:
    """A queue's history over a span (``queue`` None: every queue added together):
    ``points`` oldest first, each ``step_ms`` wide, the last one holding now, plus
    totals over the whole span."""

    queue: str | None
    span: str
    step_ms: int
    points: list[HistoryPoint]
    completed: int
    failed: int
    p95_ms: float | None

    @classmethod
    def build(
        cls,
        queue: str | None,
        span: str,
        window: HistoryWindow,
        queues: Iterable[Sequence[Sequence[int]]],
    ) -> History:
        """A history from ``window``'s slots of one or more queues (``queues``: each
        one's slots, added slot by slot)."""
        each = list(queues)
        merged: Sequence[Sequence[int]]
        if len(each) == 1:
            merged = each[0]
        elif each:
            merged = [
                [sum(column) for column in zip(*slot, strict=True)]
                for slot in zip(*each, strict=True)
            ]
        else:
            merged = [[0] * (len(DURATION_BUCKETS) + 2) for _ in range(SPANS[span][1])]
        start, step = window.start, window.step
        points = []
        for i, slot in enumerate(merged):
            completed = sum(slot) - slot[0]
            p95 = percentile(slot[1:]) if completed else None
            points.append(HistoryPoint(start + i * step, completed, slot[0], p95))
        whole = [sum(column) for column in zip(*merged, strict=True)]
        return cls(
            queue=queue,
            span=span,
            step_ms=window.step,
            points=points,
            completed=sum(whole[1:]),
            failed=whole[0],
            p95_ms=percentile(whole[1:]),
        )

    def to_dict(self) -> dict[str, Any]:
        """As the HTTP API answers it."""
        return {
            "queue": self.queue,
            "span": self.span,
            "step_seconds": self.step_ms // 1000,
            "points": [
                {"ts": p.ts, "completed": p.completed, "failed": p.failed, "p95_ms": p.p95_ms}
                for p in self.points
            ],
            "totals": {"completed": self.completed, "failed": self.failed, "p95_ms": self.p95_ms},
        }
