"""The audit log over HTTP: ``GET /api/v1/audit`` (admin scope), and the one helper
every write or admin action of the API and the dashboard calls to record itself."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from corral.app import Corral
from corral.errors import CorralError
from corral.web.auth import Scope
from corral.web.deps import caller, require, settings_of
from corral.web.schemas import COMMON_ERRORS

__all__ = ["audited", "record_action", "router"]

log = logging.getLogger("corral.web")
router = APIRouter(prefix="/api/v1", responses=COMMON_ERRORS)


async def record_action(
    corral: Corral, who: str, action: str, target: str, detail: Any = None
) -> None:
    """Record that ``who`` (a key's name) did ``action`` to ``target`` (a queue, or
    ``queue/job id``). Called once the action is done, so a store that cannot take the
    entry is logged (one warning line) and never fails the action itself."""
    try:
        await corral.record_audit(who, action, target, detail)
    except CorralError as exc:
        log.warning("audit entry not recorded (%s %s by %s): %s", action, target, who, exc)


async def audited(request: Request, action: str, target: str, detail: Any = None) -> None:
    """:func:`record_action` for an API request, by the key that made it."""
    await record_action(settings_of(request).corral, caller(request), action, target, detail)


class AuditEntryOut(BaseModel):
    id: str = Field(description="pass as ?before= to page to older entries")
    at: str = Field(description="when (ISO 8601, UTC)")
    key: str = Field(description="the API key's name (anonymous without keys)")
    action: str = Field(description="e.g. job.retry, queue.pause")
    target: str = Field(description="a queue, or queue/job id")
    detail: Any = None


class AuditPage(BaseModel):
    entries: list[AuditEntryOut] = Field(description="newest first")
    next_before: str | None = Field(description="pass as ?before= for older entries")


#: A Redis stream id (ms-seq) or a SQLite row id.
ENTRY_ID = r"^[0-9]{1,20}(-[0-9]{1,20})?$"


@router.get("/audit", response_model=AuditPage, tags=["operations"])
async def audit_log(
    request: Request,
    scope: Annotated[Scope, Depends(require(Scope.ADMIN))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        str | None,
        Query(max_length=41, pattern=ENTRY_ID, description="an entry id this API returned"),
    ] = None,
) -> Any:
    """Who did what through the API and the dashboard, newest first (admin keys only)."""
    entries = await settings_of(request).corral.audit_entries(limit, before)
    return {
        "entries": [e.to_dict() for e in entries],
        "next_before": entries[-1].id if len(entries) == limit else None,
    }
