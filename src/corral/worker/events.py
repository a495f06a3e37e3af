"""The worker's side of the lifecycle events: building each :class:`JobEvent` and
handing it to the :class:`~corral.worker.dispatch.Dispatcher`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corral.backends.base import Backend
from corral.context import JobContext
from corral.hooks import EventName, JobEvent
from corral.worker.dispatch import Dispatcher, error_of
from corral.worker.supervise import report

if TYPE_CHECKING:
    from corral.worker.worker import _Running

__all__ = ["EmitsEvents"]


class EmitsEvents:
    """Mixed into the Worker (which sets ``id`` and ``_hooks``)."""

    id: str
    _hooks: Dispatcher

    def _emit(self, kind: EventName, running: _Running, **details: Any) -> None:
        claimed = running.claimed
        event = JobEvent(
            kind,
            claimed.id,
            claimed.queue,
            claimed.name,
            claimed.attempt,
            self.id,
            ctx=running.ctx,
            **details,
        )
        self._hooks.emit(event, running.ctx)

    def _on_progress(self, ctx: JobContext, value: Any) -> None:
        event = JobEvent(
            "progress", ctx.id, ctx.queue, ctx.name, ctx.attempt, self.id, progress=value, ctx=ctx
        )
        self._hooks.emit(event, ctx)

    async def _emit_reaped(
        self, backend: Backend, queue: str, requeued: list[str], failed: list[str]
    ) -> None:
        """``stalled`` for the jobs the reaper sent back, ``failed`` for those it failed
        (read back for their task name: rare, and only with listeners)."""
        for kind, ids in (("stalled", requeued), ("failed", failed)):
            for job_id in ids:
                try:
                    record = await backend.get(queue, job_id)
                except Exception as exc:
                    report(f"could not read stalled job {job_id} for its listeners", exc)
                    continue
                if record is None:
                    continue
                error = error_of(record.errors[-1]) if record.errors else None
                self._hooks.emit(
                    JobEvent(
                        "stalled" if kind == "stalled" else "failed",
                        job_id,
                        queue,
                        record.name,
                        record.attempts,
                        self.id,
                        error=error,
                    )
                )
