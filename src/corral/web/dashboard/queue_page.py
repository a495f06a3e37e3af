"""The queue page: a tab per state with its count, that state's jobs a page at a time
(id, task, created, attempts, progress, last error), a search form, and bulk actions
on the ticked jobs or on everything the search matches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from corral.backends.base import JobState
from corral.errors import ValidationError
from corral.job import Job
from corral.search import BULK_ACTIONS, SearchPage
from corral.web.api import _queue_row
from corral.web.dashboard.job_view import Bar, bar_of
from corral.web.dashboard.listing import Criteria
from corral.web.dashboard.render import render
from corral.web.dashboard.session import Viewer, viewer_of
from corral.web.deps import settings_of
from corral.web.schemas import QueueName, State

__all__ = ["PAGE_SIZE", "SCAN", "Row", "router", "row_of"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]
Field = Annotated[str, Query(max_length=200)]
STATES = [s.value for s in JobState]
#: Jobs per page.
PAGE_SIZE = 50
#: Jobs one search request reads at most (the page says how far it got).
SCAN = 5000
_ERROR_CHARS = 160
#: What each bulk action is called on its button, and the scope it needs.
ACTIONS = {"retry": "Retry", "promote": "Run now", "cancel": "Cancel", "remove": "Remove"}


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
        # The class name without its module: the table is narrow (the job page has it all).
        kind = str(error.get("type") or "Error").rsplit(".", 1)[-1]
        summary = _short(f"{kind}: {error.get('message', '')}", _ERROR_CHARS)
    return Row(job, bar, shown, summary)


def actions_for(state: str, viewer: Viewer) -> list[tuple[str, str]]:
    """(action, label) of the bulk actions that apply to ``state`` for this viewer."""
    if not viewer.can_write:
        return []
    wanted = JobState(state)
    return [
        (name, label)
        for name, label in ACTIONS.items()
        if wanted in BULK_ACTIONS[name] and (name != "remove" or viewer.is_admin)
    ]


def bulk_message(action: str, matched: int, changed: int, skipped: int) -> str:
    """The result line of a bulk action."""
    done = {"retry": "retried", "promote": "promoted", "cancel": "cancelled", "remove": "removed"}
    text = f"{changed:,} of {matched:,} matching job{'s' if matched != 1 else ''} {done[action]}"
    if skipped:
        text += f"; {skipped:,} skipped (gone, or no longer in a state it applies to)"
    return text + "."


@router.get("/queues/{queue}")
async def queue_page(
    request: Request,
    queue: QueueName,
    viewer: Page,
    state: State = "waiting",
    task: Field = "",
    text: Field = "",
    error: Field = "",
    group: Field = "",
    since: Field = "",
    until: Field = "",
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    removed: Annotated[str | None, Query(max_length=200)] = None,
    bulk: Annotated[str | None, Query(max_length=20)] = None,
    matched: Annotated[int, Query(ge=0)] = 0,
    changed: Annotated[int, Query(ge=0)] = 0,
    skipped: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    criteria = Criteria(state, task, text, error, group, since, until)
    corral = settings_of(request).corral
    handle = corral.queue(queue)
    counts = await handle.counts()
    summary = _queue_row(queue, counts, await corral.workers())
    flash, flash_kind, status = None, "ok", 200
    if removed:
        flash = f"Job {removed} removed."
    elif bulk in ACTIONS:
        flash = bulk_message(bulk, matched, changed, skipped)
    jobs: list[Job] = []
    next_cursor: str | None = None
    found: SearchPage | None = None
    try:
        if criteria.searching:
            found = await handle.search(
                criteria.to_filter(), cursor=cursor, limit=PAGE_SIZE, scan=SCAN
            )
            jobs, next_cursor = found.jobs, found.next_cursor
        else:
            page = await handle.page(state, cursor=cursor, limit=PAGE_SIZE)
            jobs, next_cursor = page.jobs, page.next_cursor
    except ValidationError as exc:
        flash, flash_kind, status = str(exc), "error", 422
    rows = [row_of(job) for job in jobs]
    return render(
        request,
        "queue.html",
        status=status,
        viewer=viewer,
        active="overview",
        queue=queue,
        counts=counts,
        summary=summary,
        states=STATES,
        state=state,
        criteria=criteria,
        rows=rows,
        show_progress=any(row.bar or row.progress for row in rows),
        next_cursor=next_cursor,
        first_page=cursor is None,
        found=found,
        actions=actions_for(state, viewer),
        live="counts=1",
        flash=flash,
        flash_kind=flash_kind,
    )
