"""The web dashboard: server-rendered pages beside the HTTP API, in the same app.

Pages read and act through the Queue/Job API like the HTTP API does. Each page module
holds an ``APIRouter`` that :func:`install` includes; templates are in ``templates/``
and the few static files (our CSS/JS and the vendored htmx and uPlot) in ``static/``.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.web.dashboard import (
    audit_page,
    auth_pages,
    bulk_page,
    enqueue_page,
    flow_page,
    job_page,
    live,
    notify_page,
    overview,
    queue_page,
    schedules_page,
    workers_page,
)
from corral.web.dashboard.bulk_runs import BulkRuns
from corral.web.dashboard.render import HERE, base_path, render
from corral.web.dashboard.session import LoginRequired, Refused, Sessions

__all__ = ["CSP", "install", "is_page", "page_error", "shutdown"]

#: No inline script or style, nothing from another origin, no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
#: Paths of the app that are not dashboard pages (the API keeps its own answers).
_NOT_PAGES = ("/api/", "/healthz", "/readyz", "/metrics")


def is_page(request: Request) -> bool:
    """Whether a request is for a dashboard page (not the API or an operations path)."""
    path = request.scope["path"][len(base_path(request)) :] or "/"
    return not path.startswith(_NOT_PAGES)


class SecurityHeaders:
    """Adds the CSP and friends to every dashboard answer (the API's Swagger page
    loads its assets from a CDN, so /api/ is left alone), and ``Server-Timing: app``:
    the server's time to the first byte, which bench/dashboard_pages.py reports."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = str(scope.get("root_path", "")).rstrip("/")
        path = scope["path"][len(root) :] if scope["path"].startswith(root) else scope["path"]
        if path.startswith(_NOT_PAGES):
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode()
                message["headers"] = [
                    *message.get("headers", []),
                    *_HEADERS,
                    (b"server-timing", took),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def page_error(request: Request, status: int, message: str) -> Response:
    """An error as a page (or, for an htmx request, a fragment it can show)."""
    titles = {401: "Log in needed", 403: "Not allowed", 404: "Not found", 409: "Not possible"}
    title = titles.get(status, "Invalid request" if status < 500 else "Unavailable")
    if request.headers.get("hx-request"):
        # htmx swaps only 2xx answers by default: the message goes out as an event the
        # page's script shows.
        return HTMLResponse(message, status_code=status, headers={"HX-Reswap": "none"})
    try:
        return render(request, "error.html", status=status, title=title, message=message)
    except LoginRequired:
        return render(
            request, "error.html", status=status, title=title, message=message, viewer=None
        )


async def shutdown(app: FastAPI) -> None:
    """Stop the live feed's tasks (before the app's connections close)."""
    await live.hub_of_app(app).close()


def install(app: FastAPI, secret: str) -> None:
    """Add the dashboard's pages, static files and security headers to ``app``."""
    app.state.corral_sessions = Sessions(secret)
    app.state.corral_bulk_runs = BulkRuns()
    app.state.corral_live = live.LiveHub(app.state.corral_settings.corral)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="corral-static")
    for module in (
        auth_pages,
        overview,
        queue_page,
        bulk_page,
        job_page,
        live,
        schedules_page,
        workers_page,
        notify_page,
        enqueue_page,
        audit_page,
        flow_page,
    ):
        app.include_router(module.router)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        path = request.scope["path"][len(base_path(request)) :] or "/"
        if request.url.query:
            path += "?" + request.url.query
        target = f"{base_path(request)}/login?{urlencode({'next': path})}"
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        if request.method == "GET":
            return RedirectResponse(target, status_code=303)
        return page_error(request, 401, "log in first: your session has ended")

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return page_error(request, exc.status, str(exc))
