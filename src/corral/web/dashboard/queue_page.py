"""The queue page: a tab per state with its count, and that state's jobs a page at a
time (id, task, created, attempts, progress, last error)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from corral.backends.base import JobState
from corral.job import Job
from corral.web.dashboard.job_view import Bar, bar_of
from corral.web.dashboard.render import render
from corral.web.dashboard.session import Viewer, viewer_of
from corral.web.deps import settings_of
from corral.web.schemas import QueueName, State

__all__ = ["Row", "router", "row_of"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]
STATES = [s.value for s in JobState]
#: Jobs per page.
PAGE_SIZE = 50
_ERROR_CHARS = 160


@dataclass(frozen=True, slots=True)
class Row:
    """One job as the table shows it."""

    job: Job
    bar: Bar | None
    progress: str
    error: str


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def row_of(job: Job) -> Row:
    """What the table shows of ``job`` (nothing here carries argument values, so a
    read-only key sees the same rows)."""
    progress = job.progress
    bar = bar_of(progress)
    shown = "" if progress is None or bar is not None else _short(progress)
    error = job.error
    summary = ""
    if error is not None and job.state is not JobState.COMPLETED:
        summary = _short(f"{error.get('type', 'Error')}: {error.get('message', '')}", _ERROR_CHARS)
    return Row(job, bar, shown, summary)


@router.get("/queues/{queue}")
async def queue_page(
    request: Request,
    queue: QueueName,
    viewer: Page,
    state: State = "waiting",
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    removed: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    handle = settings_of(request).corral.queue(queue)
    counts = await handle.counts()
    offset = int(cursor) if cursor and cursor.isdigit() and len(cursor) <= 7 else 0
    jobs = await handle.jobs(state, offset=offset, limit=PAGE_SIZE + 1)
    next_cursor = str(offset + PAGE_SIZE) if len(jobs) > PAGE_SIZE else None
    return render(
        request,
        "queue.html",
        viewer=viewer,
        active="overview",
        queue=queue,
        counts=counts,
        states=STATES,
        state=state,
        rows=[row_of(job) for job in jobs[:PAGE_SIZE]],
        next_cursor=next_cursor,
        first_page=offset == 0,
        flash=f"Job {removed} removed." if removed else None,
    )
