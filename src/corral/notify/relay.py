"""The relay: outbox entries into delivery jobs.

Every worker of an app with notifications runs it (a lifecycle listener that serves in
the background: :meth:`Relay.serve`). It takes the due outbox entries of the queues the
worker serves, enqueues one delivery job per target on ``corral.notify`` (ids derived
from the entry and the target, so a second relay of one entry enqueues nothing new),
then acknowledges the entries. A relay that dies in between leaves its entries held
for :data:`HOLD_MS` (``CORRAL_OUTBOX_HOLD_MS`` overrides it); they are then taken
again and relayed again, which is harmless.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from corral.backends.base import Backend, NewJob, OutboxEntry
from corral.errors import CorralError, PayloadTooLarge
from corral.faults import maybe_crash
from corral.hooks import Lifecycle
from corral.notify.base import Notice, Target
from corral.notify.registry import DELIVER_TASK, NOTIFY_QUEUE, target_from_json, target_json
from corral.settings import DEFAULT_OUTBOX_HOLD_MS, outbox_hold_ms
from corral.tracing import current_trace_carrier, with_carrier
from corral.worker.supervise import report

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["HOLD_MS", "Relay", "notice_of"]

log = logging.getLogger("corral.notify")

#: How long a taken entry is held before another relay may take it again (the
#: default; ``CORRAL_OUTBOX_HOLD_MS`` sets it per process).
HOLD_MS = DEFAULT_OUTBOX_HOLD_MS
#: Entries taken per queue per round.
BATCH = 100
#: Seconds between looks at an idle outbox: the most a notification waits to be relayed.
INTERVAL = 0.25


def _json(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def notice_of(entry: OutboxEntry) -> Notice:
    """The notice an outbox entry stands for; its id is the same every time the entry
    is read (it names the job, the outcome and when it happened)."""
    basis = f"{entry.queue}\n{entry.job_id}\n{entry.event}\n{entry.finished_at}\n{entry.attempt}"
    error = _json(entry.error)
    return Notice(
        id="msg_" + hashlib.sha256(basis.encode()).hexdigest()[:26],
        event=entry.event,  # type: ignore[arg-type]
        job_id=entry.job_id,
        queue=entry.queue,
        task=entry.task,
        attempt=entry.attempt,
        created_at=_seconds(entry.created_at),
        started_at=_seconds(entry.started_at),
        finished_at=_seconds(entry.finished_at),
        result=_json(entry.result),
        error=error if isinstance(error, dict) else None,
        trace=current_trace_carrier(entry.options),
    )


class Relay(Lifecycle):
    """Turns the outbox entries of a worker's queues into delivery jobs."""

    name = "notify-relay"
    queues = (NOTIFY_QUEUE,)

    def __init__(self, app: Corral) -> None:
        self.app = app
        self.hold_ms = outbox_hold_ms()
        self._woken: asyncio.Event | None = None  # made on the worker's loop, by serve()

    def wake(self) -> None:
        """Look at the outbox now (an outcome with notifications was just recorded)."""
        if self._woken is not None:
            self._woken.set()

    async def serve(self, backend: Backend, queues: Sequence[str], closing: asyncio.Event) -> None:
        sources = [q for q in queues if q != NOTIFY_QUEUE]
        woken = self._woken = asyncio.Event()
        while not closing.is_set():
            woken.clear()
            busy = False
            for queue in sources:
                try:
                    busy |= await self.relay(backend, queue)
                except Exception as exc:
                    report(f"notifications: could not relay the outbox of {queue}", exc)
            if not busy:
                # Woken by this process's outcomes; the round catches the others' (a
                # crashed worker's entries, the reaper's, another process's cancels).
                waits = [asyncio.ensure_future(closing.wait()), asyncio.ensure_future(woken.wait())]
                await asyncio.wait(waits, timeout=INTERVAL, return_when=asyncio.FIRST_COMPLETED)
                for wait in waits:
                    wait.cancel()

    async def relay(self, backend: Backend, queue: str) -> bool:
        """Relay one batch of ``queue``'s due entries; True if there may be more."""
        entries = await backend.take_outbox(queue, BATCH, self.hold_ms)
        if not entries:
            return False
        maybe_crash("after_outbox_take")
        jobs = [job for entry in entries for job in self.deliveries(entry)]
        if jobs:
            await backend.enqueue(NOTIFY_QUEUE, jobs)
        maybe_crash("before_outbox_ack")
        await backend.ack_outbox(queue, [entry.ref for entry in entries])
        return len(entries) == BATCH

    def deliveries(self, entry: OutboxEntry) -> list[NewJob]:
        """One delivery job per target that wants this entry's outcome."""
        notice = notice_of(entry)
        task = self.app.tasks.get(entry.task)
        chosen: list[tuple[Target, dict[str, Any]]] = []
        for target in (*self.app.targets, *(task.targets if task else ())):
            chosen.append((target, {"ref": target.key}))
        options = _json(entry.options)
        for stored in options.get("notify", ()) if isinstance(options, dict) else ():
            try:
                target = target_from_json(stored)
            except CorralError as exc:
                log.error("job %s: a stored notification target is unusable: %s", entry.job_id, exc)
                continue
            chosen.append((target, {"target": target_json(target)}))
        deliver = self.app.tasks[DELIVER_TASK]
        jobs: list[NewJob] = []
        seen: set[str] = set()
        for target, ref in chosen:
            if entry.event not in target.events or target.key in seen:
                continue
            seen.add(target.key)
            one = deliver.options(job_id=f"{notice.id}.{target.key}")
            try:
                _, job = one.prepare((notice.to_json(), ref), {})
            except PayloadTooLarge:
                # A result near the size limit: the notice goes without it.
                lean = {**notice.to_json(), "result": None, "result_omitted": True}
                _, job = one.prepare((lean, ref), {})
            if notice.trace:  # the delivery's attempts join the job's trace
                job = dataclasses.replace(job, options=with_carrier(job.options, notice.trace))
            jobs.append(job)
        return jobs
