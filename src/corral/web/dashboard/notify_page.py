"""The notifications page: endpoints that are disabled (they answered 410) or whose
last delivery failed, with "Enable" for admin keys (the twin of ``corral notify
endpoints|enable`` and ``/api/v1/notify/endpoints``). Healthy endpoints keep no state,
so they are not listed; the deliveries themselves are jobs on ``corral.notify``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from corral.notify.deliver import EndpointState
from corral.notify.registry import NOTIFY_QUEUE
from corral.web.audit import record_action
from corral.web.auth import Scope
from corral.web.dashboard.render import render, url_for
from corral.web.dashboard.session import Viewer, action, viewer_of
from corral.web.deps import settings_of

__all__ = ["disabled_count", "router"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]
Admin = Annotated[Viewer, Depends(action(Scope.ADMIN))]
#: The API's rule for endpoint keys (webhook:<digest>, email:<name or digest>).
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@=+/#-]*$"
EndpointKey = Annotated[str, Path(max_length=200, pattern=KEY_PATTERN)]


def _row(state: EndpointState) -> dict[str, Any]:
    return {
        "key": state.key,
        "label": state.label,
        # Disabled wins: a disabled endpoint gets no delivery, so "failing" says nothing.
        "state": "disabled" if state.disabled else "failing",
        "since": datetime.fromtimestamp(state.at, UTC) if state.at > 0 else None,
        "reason": state.reason,
    }


async def disabled_count(request: Request) -> int:
    """How many notification endpoints are disabled (one store read), for the overview."""
    return sum(s.disabled for s in await settings_of(request).corral.notify_endpoints())


@router.get("/notifications")
async def notifications(
    request: Request,
    viewer: Page,
    done: Annotated[Literal["enable"] | None, Query()] = None,
    key: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    states = await settings_of(request).corral.notify_endpoints()
    # Disabled first (nothing reaches them until someone acts), then failing; by key.
    rows = [_row(s) for s in sorted(states, key=lambda s: (not s.disabled, s.key))]
    flash = None
    if done and key:
        flash = f"Endpoint {key} enabled: deliveries to it are attempted again."
    return render(
        request,
        "notifications.html",
        active="notifications",
        rows=rows,
        notify_queue=NOTIFY_QUEUE,
        flash=flash,
    )


@router.post("/notifications/{key}/enable")
async def enable(request: Request, key: EndpointKey, viewer: Admin) -> Response:
    """Forget a disabled or failing endpoint's state; back to the list with what happened."""
    corral = settings_of(request).corral
    if not await corral.enable_notify_endpoint(key):
        raise HTTPException(404, f"no endpoint {key!r} is disabled or failing")
    await record_action(corral, viewer.name, "notify.enable", key)
    target = url_for(request, "/notifications") + "?" + urlencode({"done": "enable", "key": key})
    return RedirectResponse(target, status_code=303)
