"""``/api/v1/notify/endpoints``: notification endpoints that are disabled or failing,
and enabling one again (the twins of ``corral notify endpoints|enable``)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field

from corral.web.audit import audited
from corral.web.auth import Scope
from corral.web.deps import require, settings_of
from corral.web.schemas import COMMON_ERRORS, Problem

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", responses=COMMON_ERRORS, tags=["notifications"])

EndpointKey = Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@=+/#-]*$")]


class EndpointOut(BaseModel):
    key: str = Field(description="the endpoint's key (webhook:..., email:...)")
    label: str = Field(description="its URL host or recipients")
    disabled: bool = Field(description="deliveries to it fail at once (it answered 410)")
    failing: bool = Field(description="its last delivery failed (it is retried)")
    reason: str = Field(description="what happened")
    at: float = Field(description="when (Unix seconds)")


@router.get("/notify/endpoints", response_model=list[EndpointOut])
async def notify_endpoints(
    request: Request, scope: Annotated[Scope, Depends(require(Scope.READ))]
) -> Any:
    """Endpoints that are disabled or whose last delivery failed (healthy ones are not listed)."""
    states = await settings_of(request).corral.notify_endpoints()
    return [dataclasses.asdict(s) for s in states]


@router.post(
    "/notify/endpoints/{key}/enable",
    status_code=204,
    responses={404: {"model": Problem, "description": "no such endpoint state"}},
)
async def enable_notify_endpoint(
    key: EndpointKey,
    request: Request,
    scope: Annotated[Scope, Depends(require(Scope.ADMIN))],
) -> None:
    """Deliver to a disabled endpoint again."""
    if not await settings_of(request).corral.enable_notify_endpoint(key):
        raise HTTPException(404, f"no endpoint {key!r} is disabled or failing")
    await audited(request, "notify.enable", key)
