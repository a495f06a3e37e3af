"""The worker's scheduler: fire the due ticks of its queues' schedules."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from corral.backends.base import Backend, ScheduleRecord
from corral.errors import BackendError, CorralError
from corral.schedules import (
    MISFIRE_GRACE,
    ScheduleSpec,
    last_tick_at_or_before,
    next_tick,
    tick_job,
)

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["Scheduler"]

log = logging.getLogger("corral.scheduler")


class Scheduler:
    """Keeps the app's declared schedules stored and fires due ticks."""

    def __init__(self, app: Corral, backend: Backend, queues: Sequence[str]) -> None:
        self.app = app
        self.backend = backend
        self.queues = list(queues)

    async def declare(self) -> None:
        """Store the schedules declared with ``@app.task(cron=...|every=...)`` for our
        queues. An unchanged definition keeps its pending tick; a schedule paused at
        run time stays paused."""
        now = await self.backend.time_ms()
        for spec in self.app.declared_schedules:
            if spec.queue not in self.queues:
                continue
            stored = {r.name: r for r in await self.backend.schedules(spec.queue)}
            existing = stored.get(spec.name)
            if existing is not None:
                current = ScheduleSpec.from_json(existing.definition)
                if current.paused and replace(current, paused=False) == spec:
                    continue
            await self.backend.upsert_schedule(
                spec.queue, spec.name, spec.to_json(), next_tick(spec, now), keep=True
            )

    async def tick(self) -> float:
        """Fire what is due; returns seconds until the next tick (at most 1)."""
        now = await self.backend.time_ms()
        wait_ms = 1000
        for queue in self.queues:
            for record in await self.backend.schedules(queue):
                if record.next_at is None:
                    continue
                pending: int | None = record.next_at
                if record.next_at <= now:
                    pending = await self._fire(queue, record, now)
                if pending is not None:
                    wait_ms = min(wait_ms, pending - now)
        return max(wait_ms, 10) / 1000

    async def _fire(self, queue: str, record: ScheduleRecord, now: int) -> int | None:
        """Fire a due tick; returns the schedule's next tick (None if it cannot fire)."""
        assert record.next_at is not None
        try:
            spec = ScheduleSpec.from_json(record.definition)
            tick = record.next_at
            late = now - tick > MISFIRE_GRACE * 1000
            if late and spec.catch_up:
                tick = last_tick_at_or_before(spec, tick, now)
            job = None if late and not spec.catch_up else tick_job(self.app, spec, tick)
            # The next tick after *now*: an outage yields at most one late job.
            following = next_tick(spec, now)
            fired = await self.backend.fire_schedule(
                queue, spec.name, record.next_at, following, job
            )
        except BackendError:
            raise
        except (CorralError, TypeError, ValueError) as exc:
            # A broken stored definition must not stop the other schedules.
            log.error("schedule %s cannot fire: %s", record.name, exc)
            return None
        if fired and job is None:
            log.warning("schedule %s missed its tick (no worker was running); skipped", spec.name)
        elif fired:
            log.info("schedule %s fired job %s", spec.name, job.id if job else "")
        return following
