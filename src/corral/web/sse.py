"""Server-Sent Events: live progress of one job, and a queue's lifecycle events."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from sse_starlette.sse import EventSourceResponse

from corral.app import Corral
from corral.errors import BackendError, JobNotFound
from corral.job import Job
from corral.web import fanout
from corral.web.auth import Scope
from corral.web.deps import job_out, progress_out, require, settings_of
from corral.web.fanout import QueueFeeds
from corral.web.schemas import COMMON_ERRORS, JOB_ERRORS, JobId, QueueName, streamed

__all__ = ["job_event_response", "router"]

log = logging.getLogger("corral.web")

router = APIRouter(prefix="/api/v1", tags=["events"], responses=COMMON_ERRORS)

Read = Annotated[Scope, Depends(require(Scope.READ))]

#: A stream re-reads its job at least this often (seconds), in case an event was lost.
RECHECK = 5.0
PING = 15
#: Seconds one write to a stream may take: a client that stops reading is dropped.
SEND_TIMEOUT = 30.0


def _event(name: str, data: Any) -> dict[str, str]:
    return {"event": name, "data": orjson.dumps(data).decode()}


def _broken(where: str, exc: BackendError) -> dict[str, str]:
    """The last event of a stream the backend failed mid-way (its status is sent)."""
    log.error("stream %s ended: %s: %s", where, type(exc).__name__, exc)
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
    job = await settings.corral.get_job(job_id, queue)  # 404 before the stream starts
    return await job_event_response(
        settings.corral,
        job,
        view=lambda j: job_out(j, scope, settings),
        progress=lambda j: progress_out(j, scope, settings),
        where=request.url.path,
        feeds=settings.feeds,
    )


async def job_event_response(
    corral: Corral,
    job: Job,
    *,
    view: Callable[[Job], Any],
    progress: Callable[[Job], Any],
    where: str,
    feeds: QueueFeeds | None = None,
) -> EventSourceResponse:
    """The SSE stream of one job (see :func:`job_events`): ``state`` and ``end`` carry
    ``view(job)``, ``progress`` events ``{"id": …, "progress": progress(job)}``;
    ``where`` names the stream in the log line of a backend failure. Subscribes
    before returning, so an unreachable backend raises here (a 503, not a stream).
    With ``feeds`` (the app's), it listens through its queue's shared subscription
    (see :mod:`corral.web.fanout`) instead of one of its own."""
    job_id = job.id
    # Events of this job are pumped into a queue: waiting on the queue with a timeout
    # is safe, whereas timing out inside the event generator would close it.
    mine: asyncio.Queue[str] = asyncio.Queue()
    leave: Callable[[], Awaitable[None]]
    pump: Callable[[], Coroutine[Any, Any, None]]
    if feeds is not None:
        feed = await feeds.join(corral, job.queue)
        pump = functools.partial(_watch_feed, feed, job_id, mine)

        async def leave() -> None:
            feeds.leave(feed)

    else:
        stream = await corral.queue(job.queue).events()

        async def pump_own() -> None:
            async for _name, event_job in stream:
                if event_job == job_id:
                    mine.put_nowait(event_job)

        pump = pump_own

        leave = stream.aclose

    async def generate() -> AsyncIterator[dict[str, str]]:
        pumping = asyncio.create_task(pump())
        try:
            await job.refresh()  # after subscribing: nothing can slip in between
            yield _event("state", view(job))
            state, shown = job.state, job.progress
            while not job.state.terminal:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECHECK):
                        await mine.get()
                try:
                    await job.refresh()
                except JobNotFound:
                    yield _event("end", {"id": job_id, "state": "removed"})
                    return
                if job.progress != shown:
                    shown = job.progress
                    yield _event("progress", {"id": job_id, "progress": progress(job)})
                if job.state != state and not job.state.terminal:
                    state = job.state
                    yield _event("state", view(job))
            yield _event("end", view(job))
        except BackendError as exc:
            yield _broken(where, exc)
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping
            await leave()

    return EventSourceResponse(generate(), ping=PING)


async def _watch_feed(feed: fanout.QueueFeed, job_id: str, mine: asyncio.Queue[str]) -> None:
    """Put a mark in ``mine`` whenever the feed's new events may concern ``job_id``
    (a longer id that contains it only costs a re-read), or were lost."""
    needle = job_id.encode()
    position, slot = feed.next, feed.slot()
    while not feed.closed:
        await feed.wait(position, slot)
        chunk = feed.since(position)
        position = feed.next
        if chunk is None or needle in chunk:
            mine.put_nowait(job_id)


@router.get(
    "/queues/{queue}/events",
    response_class=Response,
    responses=streamed("text/event-stream", "Server-Sent Events"),
)
async def queue_events(queue: QueueName, request: Request, scope: Read) -> Any:
    """Every lifecycle event of a queue as it happens: the SSE event name is the
    event (added, active, progress, log, retrying, completed, failed, cancelled,
    waiting, removed) and the data ``{"id": job_id}``; events come in the order they
    happened, several per write (a stream is written at most every 20 ms, and every
    0.4 ms per open stream of the queue in this process: 0.2 s with 500). Runs until the client disconnects. A
    client that reads slower than events arrive falls behind by 10,000 events: it
    then gets one ``resync`` event (``{"error": …}``) and the stream closes; re-read
    what you show and open a new stream. A stream the backend fails mid-way ends
    with ``error`` (``{"error": …}``)."""
    settings = settings_of(request)
    feeds = settings.feeds
    feed = await feeds.join(settings.corral, queue)  # subscribed before the answer
    where = request.url.path

    async def generate() -> AsyncIterator[bytes]:
        position, slot = feed.next, feed.slot()
        try:
            while True:
                await feed.wait(position, slot)
                chunk = feed.since(position)
                if chunk is None:
                    behind = feed.next - position
                    log.warning("stream %s fell %d events behind: resync", where, behind)
                    yield fanout.encode("resync", {"error": _resync(behind)})
                    return
                if chunk:
                    position = feed.next
                    yield chunk
                elif feed.failed is not None:
                    yield fanout.encode("error", {"error": str(feed.failed)})
                    return
                elif feed.closed:
                    return
        finally:
            feeds.leave(feed)

    return EventSourceResponse(generate(), ping=PING, send_timeout=SEND_TIMEOUT)


def _resync(behind: int) -> str:
    return (
        f"this stream fell {behind} events behind (over {fanout.BACKLOG:,}; its client "
        "reads slower than events come): events were lost, so it ends here; re-read the "
        "queue and open a new stream"
    )
