"""Rendering dashboard pages: one Jinja environment (autoescaped) and the page context."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from corral import __version__
from corral.web.dashboard.session import COOKIE, SESSION_MAX_AGE, Sessions, Viewer, viewer_of

__all__ = ["HERE", "VENDOR", "base_path", "render", "set_session", "url_for"]

HERE = Path(__file__).parent

#: Vendored front-end files (static/vendor/, see its README), pinned by name.
VENDOR = {
    "htmx": "vendor/htmx-2.0.11.min.js",
    "uplot": "vendor/uplot-1.6.32.min.js",
    "uplot_css": "vendor/uplot-1.6.32.min.css",
}


def _json(value: Any) -> str:
    """Pretty JSON text for <pre> blocks (autoescaping makes it safe to show)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def _when(value: datetime | None) -> str:
    """A time as the page prints it (UTC, to the second); JS shows it in local time."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["tojson_pretty"] = _json
_env.filters["when"] = _when


def base_path(request: Request) -> str:
    """Where the dashboard is mounted ("" at the root, "/admin/queues" when mounted)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def url_for(request: Request, path: str) -> str:
    """An absolute path inside the dashboard, wherever it is mounted."""
    return base_path(request) + (path if path.startswith("/") else "/" + path)


def set_session(request: Request, response: Any, viewer: Viewer) -> None:
    """Write the viewer's session cookie on a response."""
    sessions: Sessions = request.app.state.corral_sessions
    response.set_cookie(
        COOKIE,
        sessions.dump(viewer),
        max_age=SESSION_MAX_AGE,
        path=base_path(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    viewer: Viewer | None = None,
    public: bool = False,
    **context: Any,
) -> HTMLResponse:
    """A page (or an htmx fragment: templates whose name starts with ``_``) as HTML.

    The viewer (for action controls, masking and the CSRF token), ``url()`` for links and
    ``static()`` for assets are always in the context. ``public`` pages (login, errors
    shown before logging in) render without a viewer.
    """
    if viewer is None and not public:
        viewer = viewer_of(request)
    prefix = base_path(request)
    html = _env.get_template(template).render(
        request=request,
        viewer=viewer,
        url=lambda path: url_for(request, path),
        static=lambda path: f"{prefix}/static/{path}?v={__version__}",
        vendor=VENDOR,
        version=__version__,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if viewer is not None and viewer.fresh:
        set_session(request, response, viewer)
    return response
