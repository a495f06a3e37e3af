"""The overview: every queue with its counts, health and workers, pause/resume per queue,
charts of the recent outcomes; and finding a job."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from corral.backends.base import JobState
from corral.errors import InvalidName, JobNotFound
from corral.web.api import _queue_row
from corral.web.audit import record_action
from corral.web.auth import Scope
from corral.web.dashboard.live import hub_of
from corral.web.dashboard.notify_page import disabled_count
from corral.web.dashboard.render import render, url_for
from corral.web.dashboard.session import Viewer, action, viewer_of
from corral.web.deps import settings_of
from corral.web.schemas import QueueName

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]
Admin = Annotated[Viewer, Depends(action(Scope.ADMIN))]
STATES = [s.value for s in JobState]
SpanChoice = Literal["hour", "day"]


async def _rows(request: Request) -> list[dict[str, Any]]:
    corral = settings_of(request).corral
    workers = await corral.workers()
    return [_queue_row(q.name, q.counts, workers) for q in await corral.overview()]


@router.get("/")
async def overview(
    request: Request,
    viewer: Page,
    span: SpanChoice = "hour",
    paused: Annotated[str | None, Query(max_length=100)] = None,
    resumed: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The queues, live (see live.py); the charts load after the page (charts.js)."""
    flash = None
    if paused:
        flash = f"Queue {paused} paused: workers take no new job from it until resumed."
    elif resumed:
        flash = f"Queue {resumed} resumed."
    return render(
        request,
        "overview.html",
        active="overview",
        queues=await _rows(request),
        states=STATES,
        span=span,
        live="counts=1",
        flash=flash,
        disabled_endpoints=await disabled_count(request),
    )


@router.get("/overview/rows")
async def overview_rows(request: Request, viewer: Page) -> Response:
    """The overview's table rows, for live.js when queues come or go."""
    return render(request, "_queue_rows.html", queues=await _rows(request), states=STATES)


@router.get("/overview/history")
async def overview_history(request: Request, viewer: Page, span: SpanChoice = "hour") -> Response:
    """Every queue's outcomes together over the span (``History.to_dict()``), for the
    overview's charts."""
    history = await settings_of(request).corral.history(None, span)
    return JSONResponse(history.to_dict(), headers={"Cache-Control": "no-store"})


async def _set_paused(request: Request, viewer: Viewer, queue: str, paused: bool) -> Response:
    corral = settings_of(request).corral
    if queue not in await corral.queues():
        # Queues come into being on first use: pausing a typo would make a new one.
        raise JobNotFound(f"no queue named {queue!r}")
    handle = corral.queue(queue)
    await (handle.pause() if paused else handle.resume())
    action = "queue.pause" if paused else "queue.resume"
    await record_action(corral, viewer.name, action, queue)
    hub_of(request).poke()  # a pause emits no event: tell the other tabs now
    done = "paused" if paused else "resumed"
    return RedirectResponse(url_for(request, f"/?{done}={queue}"), status_code=303)


@router.post("/queues/{queue}/pause")
async def pause(request: Request, queue: QueueName, viewer: Admin) -> Response:
    """Stop workers claiming from the queue (enqueueing still works)."""
    return await _set_paused(request, viewer, queue, True)


@router.post("/queues/{queue}/resume")
async def resume(request: Request, queue: QueueName, viewer: Admin) -> Response:
    """Let workers claim from the queue again."""
    return await _set_paused(request, viewer, queue, False)


@router.get("/find")
async def find(
    request: Request, viewer: Page, id: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """Jump to a job by id, whatever its queue."""
    job_id = id.strip()
    if not job_id:
        return RedirectResponse(url_for(request, "/"), status_code=303)
    try:
        job = await settings_of(request).corral.get_job(job_id)
    except (JobNotFound, InvalidName) as exc:
        return render(request, "error.html", status=404, title="No such job", message=str(exc))
    return RedirectResponse(url_for(request, f"/queues/{job.queue}/jobs/{job.id}"), 303)
