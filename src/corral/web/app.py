"""The ASGI app: ``create_app(corral)`` gives a FastAPI app to serve or mount."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral import __version__
from corral.app import Corral
from corral.errors import (
    BackendError,
    CorralError,
    InvalidName,
    InvalidTransition,
    JobNotFound,
    UnknownTask,
    ValidationError,
)
from corral.policy import check_job_id, check_key, check_queue_name, check_task_name
from corral.web import api, audit, enqueue_api, flows_api, metrics, notify_api, schedules_api, sse
from corral.web import dashboard as web_dashboard
from corral.web.auth import ApiKey, KeyRing
from corral.web.auth import Scope as KeyScope
from corral.web.dashboard.session import default_secret
from corral.web.deps import DEFAULT_SECRET_FIELDS, Settings
from corral.web.schemas import JSON_VALUE_SCHEMA, problems

__all__ = ["create_app"]

log = logging.getLogger("corral.web")

_STATUS = (
    (JobNotFound, 404),
    (UnknownTask, 422),
    (ValidationError, 422),
    (InvalidTransition, 409),
    (BackendError, 503),
)


def log_5xx(status: int, method: str, path: str, exc: BaseException) -> None:
    """The one log line of a 5xx answer: status, request and cause (the traceback of
    an unexpected error goes to DEBUG)."""
    cause = str(exc).replace("\n", " ") or "no message"
    log.error("%d %s %s: %s: %s", status, method, path, type(exc).__name__, cause)
    if status == 500:
        log.debug("traceback of the 500 above", exc_info=exc)


class ServerErrors:
    """An exception no handler took: a 500 with one log line, instead of the server's
    traceback (and, once a response has started, the line alone)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            log_5xx(500, scope["method"], scope["path"], exc)
            if not started:
                await JSONResponse({"error": "internal error"}, status_code=500)(
                    scope, receive, send
                )


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before reading them whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, f"request body is over the limit of {self.limit} bytes")
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, send: Send) -> None:
        body = f'{{"error":"request body is over the limit of {self.limit} bytes"}}'.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(
    corral: Corral,
    *,
    api_keys: Mapping[str, KeyScope | str] | Iterable[ApiKey] | None = None,
    allow_unregistered: bool = False,
    secret_fields: tuple[str, ...] = DEFAULT_SECRET_FIELDS,
    max_body_bytes: int = 1024 * 1024,
    secret: str | None = None,
    dashboard: bool = True,
) -> FastAPI:
    """The HTTP API and the dashboard of ``corral`` as a FastAPI app: ``corral serve``
    serves it; mount it in your own app at any prefix (``/admin/queues``).

    ``api_keys``: :class:`ApiKey` (name, bearer token, scope: read, write or admin)
    items, e.g. from ``parse_api_keys("ops=TOKEN:admin")``, or {token: scope} (names
    derived from the tokens); the names say who did what in the audit log. None means
    no authentication (``corral serve`` refuses that on a public address). Enqueueing a
    task name this app has not registered is refused unless ``allow_unregistered``.
    Payload fields whose names contain one of ``secret_fields`` are shown as ``***``
    to read-only keys. ``secret`` signs the dashboard's session cookies (default:
    derived from the keys; ``CORRAL_SECRET`` in ``corral serve``). ``dashboard=False``
    serves the HTTP API (and the operations paths) alone.
    """
    pages = dashboard

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.corral_settings.feeds.close()
        if pages:
            await web_dashboard.shutdown(app)
        await corral.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Corral",
        version=__version__,
        summary="Enqueue and follow background jobs from any language.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    describe = app.openapi

    def openapi() -> dict[str, Any]:
        document = describe()
        document["components"]["schemas"]["JsonValue"] = JSON_VALUE_SCHEMA
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.corral_settings = Settings(
        corral=corral,
        keys=KeyRing(api_keys),
        allow_unregistered=allow_unregistered,
        secret_fields=secret_fields,
        max_body_bytes=max_body_bytes,
    )

    # First: FastAPI tries routes in order, and a probe every few seconds should not
    # walk the API's and the dashboard's ~150 routes first (~0.3 ms a request).
    @app.get("/healthz", tags=["operations"], response_model=dict[str, str])
    async def healthz() -> JSONResponse:
        """The process is up. ``X-Corral-Pid`` names the process that answered (with
        ``corral serve --workers N``, one of N)."""
        return JSONResponse({"status": "ok"}, headers={"X-Corral-Pid": str(os.getpid())})

    @app.get("/readyz", tags=["operations"], responses=problems(503))
    async def readyz() -> JSONResponse:
        """The backend answers."""
        try:
            await corral.queues()
        except CorralError as exc:
            log_5xx(503, "GET", "/readyz", exc)
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok"})

    app.include_router(enqueue_api.router)
    app.include_router(api.router)
    app.include_router(audit.router)
    app.include_router(schedules_api.router)
    app.include_router(flows_api.router)
    app.include_router(notify_api.router)
    app.include_router(sse.router)
    app.include_router(metrics.router)
    keyring = app.state.corral_settings.keys
    if pages:
        web_dashboard.install(app, secret or default_secret(keyring.tokens()))
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(ServerErrors)

    _answer_errors(app, pages)
    return app


def _answer_errors(app: FastAPI, pages: bool) -> None:
    """Every error the API raises becomes a JSON answer naming what was wrong (a page,
    for a dashboard path when the app has the dashboard)."""

    def is_page(request: Request) -> bool:
        return pages and web_dashboard.is_page(request)

    @app.exception_handler(CorralError)
    async def corral_error(request: Request, exc: CorralError) -> Response:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
        if status >= 500:
            log_5xx(status, request.method, request.url.path, exc)
        if is_page(request):
            return web_dashboard.page_error(
                request, status, str(exc) if status != 500 else "internal error"
            )
        if status == 500:
            return JSONResponse({"error": "internal error"}, status_code=500)
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        detail = [_describe(e) for e in exc.errors()]
        if is_page(request):
            return web_dashboard.page_error(request, 422, "; ".join(detail))
        return JSONResponse({"error": "; ".join(detail), "detail": detail}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if is_page(request) and exc.status_code != 405:
            return web_dashboard.page_error(request, exc.status_code, str(exc.detail))
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI's answer to a body that is not UTF-8; it is bad JSON like any other.
            error = "body is not valid JSON (not UTF-8 text)"
            return JSONResponse({"error": error, "detail": [error]}, status_code=422)
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette names the methods of one route; the path may have several.
            allowed = _allowed(request, (headers or {}).get("Allow", ""))
            headers = {**(headers or {}), "Allow": allowed}
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=headers)


def _allowed(request: Request, fallback: str) -> str:
    """The methods the OpenAPI document lists for the request's path (Starlette's 405
    names only those of the first route that matched the path)."""
    path = request.url.path
    for template, operations in request.app.openapi()["paths"].items():
        parts = template.split("/")
        pattern = "/".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        if re.fullmatch(pattern, path):
            return ", ".join(sorted(method.upper() for method in operations))
    return fallback


#: Names whose rule (policy.py) says more than "should match pattern ...".
_NAME_RULES: dict[str, Callable[[object], object]] = {
    "queue": check_queue_name,
    "task": check_task_name,
    "job_id": check_job_id,
    "group": lambda v: check_key("group", v),
    "dedupe_key": lambda v: check_key("dedupe key", v),
}


def _describe(error: Mapping[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return f"body is not valid JSON ({reason})" if reason else "body is not valid JSON"
    loc = error.get("loc", ())
    where = ".".join(str(p) for p in loc if p != "body") or "body"
    if error.get("type") == "too_long" and where == "jobs":
        ctx = error.get("ctx") or {}
        got = ctx.get("actual_length")
        return (
            f"jobs: at most {ctx.get('max_length')} jobs per request"
            + (f", got {got}" if got is not None else "")
            + ": split them over several requests"
        )
    rule = _NAME_RULES.get(str(loc[-1])) if loc else None
    if error.get("type") == "string_pattern_mismatch" and rule is not None:
        try:
            rule(error.get("input"))
        except InvalidName as exc:
            return f"{where}: {exc}"
    return f"{where}: {error.get('msg', 'invalid')}"
