"""FastAPI glue: Corral's connections in the app's lifespan, the Corral app as a
dependency, and Corral's HTTP API and dashboard mounted under a prefix.

>>> corral = Corral()
>>> app = FastAPI(lifespan=corral_lifespan(corral, inner=my_lifespan))
>>> mount(app, corral, "/corral")  # keys from CORRAL_API_KEYS, else loopback clients only
>>> @app.post("/reports")
... async def report(corral: CorralDep) -> dict[str, str]:
...     return {"id": (await corral.enqueue("reports.build", ["org-1"])).id}
"""

from __future__ import annotations

try:
    from fastapi import Depends, FastAPI
    from starlette.requests import HTTPConnection
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        f"corral.contrib.fastapi needs FastAPI: pip install 'corral[fastapi]' "
        f"({exc.name} is missing)",
        name=exc.name,
    ) from None

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.app import Corral
from corral.errors import ConfigurationError
from corral.job import Job
from corral.worker import Worker

__all__ = ["CorralDep", "corral_context", "corral_lifespan", "get_corral", "job_events", "mount"]

log = logging.getLogger("corral.contrib.fastapi")

#: A FastAPI lifespan: ``lifespan(app)`` is an async context manager (its value, a
#: state mapping or None, becomes the requests' ``request.state``).
Lifespan = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]
#: What corral_lifespan returns: FastAPI types ``lifespan=`` as yielding None or a
#: mapping (never "either"), so the value is typed loosely enough for both under mypy.
AppLifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def _managed(app: FastAPI) -> list[Corral]:
    """The Corral apps whose connections this app's lifespan closes (corral_context)."""
    managed: list[Corral] | None = getattr(app.state, "corral_managed", None)
    if managed is None:
        managed = app.state.corral_managed = []
    return managed


@contextlib.asynccontextmanager
async def corral_context(
    app: FastAPI, corral: Corral, *, worker: bool | Worker = False
) -> AsyncIterator[Corral]:
    """Corral's part of a lifespan, to use inside your own::

        @asynccontextmanager
        async def lifespan(app):
            async with corral_context(app, corral):
                yield  # your startup before, your shutdown after

    On entry it connects (a bad URL or an unreachable backend fails the startup with
    one line naming it) and makes ``corral`` the app's :data:`CorralDep`; on exit it
    closes the connections. ``worker=True`` also runs a :class:`~corral.worker.Worker`
    (the app's task queues, ``grace`` 5 s) on the server's event loop, or pass your own
    ``Worker``: for development only (jobs share the web process, its event loop and
    its restarts); in production run ``corral worker`` processes.
    """
    app.state.corral = corral
    managed = _managed(app)
    managed.append(corral)
    try:
        await corral.backend()
        async with _running(corral, worker):
            yield corral
    finally:
        managed.remove(corral)
        await corral.close()


@contextlib.asynccontextmanager
async def _running(corral: Corral, worker: bool | Worker) -> AsyncIterator[None]:
    """An in-process worker (when asked for) from entry to exit."""
    if not worker:
        yield
        return
    chosen = worker if isinstance(worker, Worker) else Worker(corral, grace=5.0)
    running = asyncio.create_task(chosen.run(), name="corral-fastapi-worker")
    running.add_done_callback(_report_worker_end)
    try:
        yield
    finally:
        if not running.done():
            chosen.stop()
        with contextlib.suppress(Exception):
            await running


def _report_worker_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the in-process worker stopped: %s", task.exception())


def corral_lifespan(
    corral: Corral, *, inner: Lifespan | None = None, worker: bool | Worker = False
) -> AppLifespan:
    """A lifespan for ``FastAPI(lifespan=...)`` that runs :func:`corral_context`
    around ``inner`` (your own lifespan, if any): Corral is connected before your
    startup runs and closed after your shutdown, so both can enqueue. The in-process
    worker (``worker``, development only) starts after your startup and stops before
    your shutdown, so its tasks can use what your lifespan opens. ``inner``'s state
    (a mapping it yields) reaches the requests as usual."""
    if inner is not None and inspect.isasyncgenfunction(inner):
        inner = contextlib.asynccontextmanager(inner)
    if inner is not None and not callable(inner):
        raise ConfigurationError(
            f"inner must be a lifespan (a function of the app returning an async context "
            f"manager), got {type(inner).__name__}: {inner!r}"
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any] | None]:
        async with corral_context(app, corral):
            if inner is None:
                async with _running(corral, worker):
                    yield None
            else:
                async with inner(app) as state, _running(corral, worker):
                    yield state

    return lifespan


async def get_corral(connection: HTTPConnection) -> Corral:
    """The Corral app of the request's FastAPI app (from :func:`corral_lifespan`,
    :func:`corral_context` or :func:`mount`); the dependency behind :data:`CorralDep`
    (override it in tests with ``app.dependency_overrides[get_corral]``)."""
    corral = getattr(connection.app.state, "corral", None)
    if not isinstance(corral, Corral):
        raise ConfigurationError(
            "this FastAPI app has no Corral app: create it with "
            "FastAPI(lifespan=corral_lifespan(corral)), or call mount(app, corral)"
        )
    return corral


#: The Corral app, as an endpoint parameter: ``async def f(corral: CorralDep)``.
CorralDep = Annotated[Corral, Depends(get_corral)]


async def job_events(
    corral: Corral,
    job_id: str,
    queue: str | None = None,
    *,
    view: Callable[[Job], Any] | None = None,
) -> Response:
    """One job's live Server-Sent Events, for a route of your own: the stream of the
    API's ``GET …/jobs/{id}/events`` (``state``, ``progress`` per report, ``end``,
    then it closes), answering under your app's own rules of who may follow which job
    (a browser's ``EventSource`` sends cookies, never an API key)::

        @app.get("/api/sync-jobs/{job_id}/events")
        async def follow(job_id: str, corral: CorralDep, user: CurrentUser) -> Response:
            ...  # check that the job is the user's
            return await job_events(corral, job_id, "sync", view=public_view)

    ``state`` and ``end`` carry ``view(job)`` (default: the whole job, as
    ``job.to_dict()``; pass a view to show a browser only what it may see), and
    ``progress`` events ``{"id": …, "progress": …}``. Raises JobNotFound for an
    unknown job (answer 404) and BackendError when the store is unreachable.
    """
    from corral.web.sse import job_event_response

    job = await corral.get_job(job_id, queue)
    return await job_event_response(
        corral,
        job,
        view=view or Job.to_dict,
        progress=lambda j: j.progress,
        where=f"events of job {job_id!r}",
    )


def mount(
    app: FastAPI,
    corral: Corral,
    prefix: str = "/corral",
    *,
    api_keys: Mapping[str, str] | Iterable[Any] | None = None,
    dashboard: bool = True,
    insecure_public_without_auth: bool = False,
    **options: Any,
) -> FastAPI:
    """Mount Corral's HTTP API (``{prefix}/api/v1``) and, with ``dashboard``, its
    dashboard (``{prefix}/``) in ``app``; returns the mounted app.

    ``api_keys`` as in :func:`corral.web.app.create_app` (``ApiKey`` items, e.g.
    ``parse_api_keys("ops=TOKEN:admin")``); None reads ``CORRAL_API_KEYS``. With no
    key at all, only loopback clients are answered (403 for others, like ``corral
    serve`` refusing a public address) unless ``insecure_public_without_auth``.
    ``options`` go to ``create_app`` (``secret``, ``allow_unregistered``...). At the
    app's shutdown the dashboard's live feed stops, and Corral's connections close
    (after your shutdown, when :func:`corral_lifespan` manages them).
    """
    from corral.web import create_app
    from corral.web.auth import parse_api_keys

    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ConfigurationError(
            f"prefix must start with / and not end with one (like '/corral'), got {prefix!r}"
        )
    keys = api_keys
    if keys is None:
        keys = parse_api_keys(os.environ.get("CORRAL_API_KEYS", ""))
    sub = create_app(corral, api_keys=keys, dashboard=dashboard, **options)
    open_to_all = bool(sub.state.corral_settings.keys.tokens()) or insecure_public_without_auth
    app.mount(prefix, sub if open_to_all else LoopbackOnly(sub))
    if getattr(app.state, "corral", None) is None:
        app.state.corral = corral
    # Starlette types a lifespan as yielding None or a state mapping, never either.
    wrapped = _with_mounted(app.router.lifespan_context, sub, corral)
    app.router.lifespan_context = wrapped  # type: ignore[assignment]
    return sub


def _with_mounted(outer: Lifespan, sub: FastAPI, corral: Corral) -> Lifespan:
    """``outer`` plus the mounted app's shutdown (Starlette runs no lifespan of a
    mounted app): its live feed stops before ``outer``'s shutdown, and Corral's
    connections close after it unless :func:`corral_context` closes them itself."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        managed = False
        try:
            async with outer(app) as state:
                try:
                    yield state
                finally:
                    managed = corral in _managed(app)
                    if hasattr(sub.state, "corral_live"):
                        from corral.web import dashboard

                        await dashboard.shutdown(sub)
        finally:
            if not managed:
                await corral.close()

    return lifespan


class LoopbackOnly:
    """Answers only loopback clients: the API without keys is an admin to anyone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not _is_loopback(scope.get("client")):
            if scope["type"] == "http":
                error = (
                    "Corral's API has no API keys configured, so it answers loopback "
                    "clients only: pass api_keys to mount() (or set CORRAL_API_KEYS)"
                )
                await JSONResponse({"error": error}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _is_loopback(client: Any) -> bool:
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return str(client[0]) == "localhost"
