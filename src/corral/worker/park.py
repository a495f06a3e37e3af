"""Parking a job that raised :class:`~corral.errors.WaitForChildren`: its children are
stored and it waits ``blocked`` for them, holding no worker slot (see
``Backend.park``); the task runs again once they have ended."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from corral.backends.base import Backend, ClaimedJob, OnFailure
from corral.errors import InvalidFlow, ValidationError, WaitForChildren
from corral.flow import SpawnedChildren, prepare_children
from corral.worker.executor import Kind, Outcome, error_record

__all__ = ["park"]

log = logging.getLogger("corral.worker")


async def park(
    backend: Backend,
    claimed: ClaimedJob,
    outcome: Outcome,
    worker_id: str,
    with_retries: Callable[[Callable[[], Awaitable[bool]]], Awaitable[bool]],
) -> Outcome:
    """Park the job; the outcome to record instead when its children are not valid
    (a permanent failure naming the problem), else ``outcome`` itself."""
    signal = outcome.exc
    assert isinstance(signal, WaitForChildren)
    try:
        try:
            policy = OnFailure(signal.on_failure)
        except ValueError:
            raise InvalidFlow(
                f"WaitForChildren: on_failure must be one of "
                f"{', '.join(p.value for p in OnFailure)}, got {signal.on_failure!r}"
            ) from None
        # Outcomes it holds already: earlier children keep their names, and the spawn id
        # differs per wait (the same one again when a stalled job repeats a wait).
        if isinstance(signal.children, SpawnedChildren):  # prepared in an isolated task's child
            if (refused := signal.children.error()) is not None:
                raise refused
            spawn_id, children = signal.children.spawn_id, list(signal.children.jobs)
        else:
            taken = await backend.dependency_outcomes(claimed.queue, claimed.id)
            spawn_id = f"{claimed.id}.s{len(taken)}"
            children = prepare_children(signal.children, spawn_id, taken)
    except ValidationError as exc:
        error = error_record(exc, claimed.attempt, with_traceback=False, worker=worker_id)
        return Outcome(Kind.FAILED, error=error, error_text=f"{type(exc).__name__}: {exc}")
    parked = await with_retries(
        lambda: backend.park(claimed.queue, claimed.id, claimed.token, spawn_id, children, policy)
    )
    log.info(
        "job %s (%s) %s for %d children",
        claimed.id,
        claimed.name,
        "parked" if parked else "could not park (lease lost)",
        len(children),
    )
    return outcome
