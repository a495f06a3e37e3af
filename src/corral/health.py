"""A queue's health verdict, the same wherever it is shown (``app.health()``,
``GET /api/v1/queues``, the dashboard)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corral.backends.base import JobState, WorkerInfo

__all__ = ["HEALTH_RULE", "QueueHealth", "judge"]

HEALTH_RULE = (
    "healthy unless the queue is paused while jobs wait, or jobs wait and no live worker "
    "serves the queue"
)


@dataclass(frozen=True, slots=True)
class QueueHealth:
    """One queue's counts per state, whether it is paused, how many live workers
    serve it, and the verdict: ``healthy`` with a ``reason`` (see :data:`HEALTH_RULE`)."""

    name: str
    waiting: int
    delayed: int
    active: int
    completed: int
    failed: int
    cancelled: int
    paused: bool
    workers: int
    healthy: bool
    reason: str
    #: Jobs of flows waiting for their dependencies (not counted as waiting).
    blocked: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict, in declaration order."""
        return dataclasses.asdict(self)


def judge(name: str, counts: Mapping[str, int], workers: Sequence[WorkerInfo]) -> QueueHealth:
    """The verdict for queue ``name`` from its counts (as ``Queue.counts()`` returns
    them) and the live workers."""
    serving = sum(1 for w in workers if name in w.queues)
    paused = bool(counts.get("paused"))
    waiting = counts.get("waiting", 0)
    if paused and waiting:
        healthy, reason = False, "paused with jobs waiting"
    elif waiting and not serving:
        healthy, reason = False, "jobs waiting and no live worker serves the queue"
    else:
        healthy, reason = True, "ok"
    states = {s.value: counts.get(s.value, 0) for s in JobState}
    return QueueHealth(
        name=name, **states, paused=paused, workers=serving, healthy=healthy, reason=reason
    )
