"""Log in (paste a key) and log out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from corral.web.auth import Scope
from corral.web.dashboard.render import base_path, render, set_session
from corral.web.dashboard.session import (
    COOKIE,
    LoginRequired,
    Viewer,
    action,
    fingerprint,
    new_csrf,
    viewer_of,
)
from corral.web.deps import settings_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path inside the dashboard: never another site (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    if not settings_of(request).keys.enabled:
        return RedirectResponse(base_path(request) + "/", status_code=303)
    try:
        viewer_of(request)
        return RedirectResponse(base_path(request) + _safe_next(next), status_code=303)
    except LoginRequired:
        return render(request, "login.html", public=True, next=_safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    key: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    settings = settings_of(request)
    if not settings.keys.enabled:
        return RedirectResponse(base_path(request) + "/", status_code=303)
    token = key.strip()
    found = settings.keys.by_fingerprint(fingerprint(token)) if token else None
    if found is None or settings.keys.scope_of(token) is None:
        error = "enter an API key" if not token else "that key is not one of this server's keys"
        return render(
            request, "login.html", status=401, public=True, next=_safe_next(next), error=error
        )
    name, scope = found
    viewer = Viewer(name, scope, new_csrf(), key=fingerprint(token))
    response = RedirectResponse(base_path(request) + _safe_next(next), status_code=303)
    set_session(request, response, viewer)
    return response


@router.post("/logout")
async def logout(
    request: Request, viewer: Annotated[Viewer, Depends(action(Scope.READ))]
) -> Response:
    response = RedirectResponse(base_path(request) + "/login", status_code=303)
    response.delete_cookie(COOKIE, path=base_path(request) or "/")
    return response
