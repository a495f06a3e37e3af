"""The overview: every queue with its counts, health and workers; and finding a job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from corral.backends.base import JobState
from corral.errors import InvalidName, JobNotFound
from corral.web.api import _queue_row
from corral.web.dashboard.render import render, url_for
from corral.web.dashboard.session import Viewer, viewer_of
from corral.web.deps import settings_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]
STATES = [s.value for s in JobState]


async def _rows(request: Request) -> list[dict[str, Any]]:
    corral = settings_of(request).corral
    workers = await corral.workers()
    return [_queue_row(q.name, q.counts, workers) for q in await corral.overview()]


@router.get("/")
async def overview(request: Request, viewer: Page) -> Response:
    queues = await _rows(request)
    return render(
        request,
        "overview.html",
        active="overview",
        queues=queues,
        states=STATES,
        live="counts=1",
    )


@router.get("/overview/rows")
async def overview_rows(request: Request, viewer: Page) -> Response:
    """The overview's table rows, for live.js when queues come or go."""
    return render(request, "_queue_rows.html", queues=await _rows(request), states=STATES)


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
