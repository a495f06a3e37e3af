"""The audit page (admin scope): who did what to which queue or job, newest first,
paged by entry id like ``GET /api/v1/audit``."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from corral.audit import AuditEntry
from corral.web.dashboard.render import render
from corral.web.dashboard.session import Refused, Viewer, viewer_of
from corral.web.deps import settings_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]

#: Entries per page.
PAGE_SIZE = 50
#: A Redis stream id (ms-seq) or a SQLite row id.
ENTRY_ID = r"^[0-9]{1,20}(-[0-9]{1,20})?$"


def _row(entry: AuditEntry, queues: set[str]) -> dict[str, Any]:
    queue, slash, job_id = entry.target.partition("/")
    if slash and queue in queues and job_id:
        link = f"/queues/{queue}/jobs/{job_id}"
    elif not slash and entry.target in queues:
        link = f"/queues/{entry.target}"
    elif entry.action.startswith("schedule."):
        link = "/schedules"
    elif entry.action.startswith("notify."):
        link = "/notifications"
    else:
        link = None
    detail = None
    if entry.detail is not None:
        detail = orjson.dumps(entry.detail, option=orjson.OPT_NON_STR_KEYS).decode()
    verb = entry.action.rpartition(".")[2]
    tone = "bad" if verb in ("remove", "clean", "cancel", "cancel_all") else "info"
    return {
        "id": entry.id,
        "at": entry.at,
        "key": entry.key,
        "action": entry.action,
        "tone": tone,
        "target": entry.target,
        "link": link,
        "detail": detail,
    }


@router.get("/audit")
async def audit(
    request: Request,
    viewer: Page,
    before: Annotated[str | None, Query(max_length=41, pattern=ENTRY_ID)] = None,
) -> Response:
    if not viewer.is_admin:
        raise Refused(f"your key has {viewer.scope.name.lower()} scope; admin is needed for this")
    corral = settings_of(request).corral
    entries = await corral.audit_entries(PAGE_SIZE, before)
    queues = {q.name for q in await corral.overview()}
    return render(
        request,
        "audit.html",
        active="audit",
        rows=[_row(e, queues) for e in entries],
        before=before,
        next_before=entries[-1].id if len(entries) == PAGE_SIZE else None,
    )
