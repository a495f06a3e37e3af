"""Server-Sent Events: live progress of one job, and a queue's lifecycle events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from sse_starlette.sse import EventSourceResponse

from corral.errors import BackendError, JobNotFound
from corral.web.auth import Scope
from corral.web.deps import job_out, progress_out, require, settings_of
from corral.web.schemas import COMMON_ERRORS, JOB_ERRORS, JobId, QueueName, streamed

__all__ = ["router"]

log = logging.getLogger("corral.web")

router = APIRouter(prefix="/api/v1", tags=["events"], responses=COMMON_ERRORS)

Read = Annotated[Scope, Depends(require(Scope.READ))]

#: A stream re-reads its job at least this often (seconds), in case an event was lost.
RECHECK = 5.0
PING = 15


def _event(name: str, data: Any) -> dict[str, str]:
    return {"event": name, "data": orjson.dumps(data).decode()}


def _broken(request: Request, exc: BackendError) -> dict[str, str]:
    """The last event of a stream the backend failed mid-way (its status is sent)."""
    log.error("stream %s ended: %s: %s", request.url.path, type(exc).__name__, exc)
    return _event("error", {"error": str(exc)})


@router.get(
    "/queues/{queue}/jobs/{job_id}/events",
    response_class=Response,
    responses={**streamed("text/event-stream", "Server-Sent Events"), **JOB_ERRORS},
)
async def job_events(queue: QueueName, job_id: JobId, request: Request, scope: Read) -> Any:
    """A stream for one job: ``state`` (the whole job) first and on every change of
    state, ``progress`` (``{"progress": …}``) on every progress report, then ``end``
    with the final job once it is completed, failed or cancelled; then it closes.
    A stream the backend fails mid-way ends with ``error`` (``{"error": …}``)."""
    settings = settings_of(request)
    corral = settings.corral
    job = await corral.get_job(job_id, queue)  # 404 before the stream starts
    stream = await corral.queue(queue).events()

    # Events of this job are pumped into a queue: waiting on the queue with a timeout
    # is safe, whereas timing out inside the event generator would close it.
    mine: asyncio.Queue[str] = asyncio.Queue()

    async def pump() -> None:
        async for name, event_job in stream:
            if event_job == job_id:
                mine.put_nowait(name)

    async def generate() -> AsyncIterator[dict[str, str]]:
        pumping = asyncio.create_task(pump())
        try:
            await job.refresh()  # after subscribing: nothing can slip in between
            yield _event("state", job_out(job, scope, settings))
            state, progress = job.state, job.progress
            while not job.state.terminal:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECHECK):
                        await mine.get()
                try:
                    await job.refresh()
                except JobNotFound:
                    yield _event("end", {"id": job_id, "state": "removed"})
                    return
                if job.progress != progress:
                    progress = job.progress
                    yield _event(
                        "progress", {"id": job_id, "progress": progress_out(job, scope, settings)}
                    )
                if job.state != state and not job.state.terminal:
                    state = job.state
                    yield _event("state", job_out(job, scope, settings))
            yield _event("end", job_out(job, scope, settings))
        except BackendError as exc:
            yield _broken(request, exc)
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping
            await stream.aclose()

    return EventSourceResponse(generate(), ping=PING)


@router.get(
    "/queues/{queue}/events",
    response_class=Response,
    responses=streamed("text/event-stream", "Server-Sent Events"),
)
async def queue_events(queue: QueueName, request: Request, scope: Read) -> Any:
    """Every lifecycle event of a queue as it happens: the SSE event name is the
    event (added, active, progress, log, retrying, completed, failed, cancelled,
    waiting, removed) and the data ``{"id": job_id}``. Runs until the client disconnects."""
    corral = settings_of(request).corral
    stream = await corral.queue(queue).events()

    async def generate() -> AsyncIterator[dict[str, str]]:
        try:
            async for name, job_id in stream:
                yield _event(name, {"id": job_id})
        except BackendError as exc:
            yield _broken(request, exc)
        finally:
            await stream.aclose()

    return EventSourceResponse(generate(), ping=PING)
