"""``POST /api/v1/jobs`` and ``POST /api/v1/jobs/bulk``: enqueue by task name.

Both check each job the way ``Corral.enqueue`` does (registered name, the task's
signature, JSON payload within the app's limit) before anything is stored. A bulk
request is all or nothing: one bad job refuses the whole request with a 422 that names
every bad job by index and field; a good one is stored in one backend call per queue.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError as BodyInvalid

from corral.app import Corral
from corral.backends.base import NewJob
from corral.errors import BackendError, UnknownTask, ValidationError
from corral.job import Job
from corral.task import Task
from corral.web.audit import audited
from corral.web.auth import Scope
from corral.web.deps import ANONYMOUS, Settings, job_out, require, settings_of
from corral.web.schemas import (
    COMMON_ERRORS,
    BulkEnqueueOut,
    BulkEnqueueRequest,
    EnqueueRequest,
    JobOut,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", responses=COMMON_ERRORS)
log = logging.getLogger("corral.web")

Write = Annotated[Scope, Depends(require(Scope.WRITE))]

#: A 422 message names at most this many bad jobs (``detail`` lists them all).
_SHOWN_ERRORS = 10


#: The fields of a request that become the job's options, and a reader of their values.
_OPTIONS = (
    "priority", "delay", "attempts", "timeout", "job_id", "group", "dedupe_key",
    "dedupe_window", "debounce",
)  # fmt: skip
_option_values = operator.attrgetter(*_OPTIONS)


def prepare(
    corral: Corral,
    settings: Settings,
    body: EnqueueRequest,
    seen: dict[tuple[Any, ...], Task[Any, Any]] | None = None,
) -> tuple[str, NewJob]:
    """Check and encode one job as ``Corral.enqueue`` does: (queue, NewJob). ``seen``
    keeps the task of each set of options met in one request (a bulk request's jobs
    mostly share theirs, and a task checks and encodes its options once)."""
    if body.task not in corral.tasks and not settings.allow_unregistered:
        raise UnknownTask(f"task: no task named {body.task!r} is registered in this server's app")
    values = _option_values(body)
    key = (body.task, body.queue, *values)
    task = None if seen is None else seen.get(key)
    if task is None:
        options = dict(zip(_OPTIONS, values, strict=True))
        task = corral.call(body.task, queue=body.queue).task.options(**options)
        if seen is not None:
            seen[key] = task
    return task.prepare(tuple(body.args), dict(body.kwargs))


class _LeanRoute(APIRoute):
    """``POST /jobs`` and ``POST /jobs/bulk``: a lean handler takes the common request
    (a JSON body that validates, a key that may write), FastAPI's own handler
    everything else.

    FastAPI's request machinery (reading and decoding the body, solving the
    dependencies, serializing the answer) cost more than the enqueue itself; here the
    body is validated straight from its bytes and the answer encoded once. Anything
    the lean path is unsure of (another content type, a body that does not validate, a
    missing or weak key) goes to FastAPI's handler, so errors are answered exactly as
    on every other route. The OpenAPI document is FastAPI's, from the endpoint.
    """

    #: The request model and what to do with a valid one (set per route).
    model: type[EnqueueRequest] | type[BulkEnqueueRequest]
    lean: Callable[[Any, Request, Scope, Settings], Awaitable[Response]]

    def get_route_handler(self) -> Any:
        slow = super().get_route_handler()

        async def handler(request: Request) -> Response:
            fast = await self._fast(request)
            return fast if fast is not None else await slow(request)

        return handler

    async def _fast(self, request: Request) -> Response | None:
        headers = request.headers
        if headers.get("content-type") != "application/json":
            return None
        settings = settings_of(request)
        scope = Scope.ADMIN
        if settings.keys.enabled:
            kind, _, token = (headers.get("authorization") or "").partition(" ")
            found = settings.keys.lookup(token.strip()) if kind.lower() == "bearer" else None
            if found is None or found[1] < Scope.WRITE:
                return None
            request.state.corral_key, scope = found
        else:
            request.state.corral_key = ANONYMOUS
        try:
            body = self.model.model_validate_json(await request.body())
        except (BodyInvalid, ValueError):
            return None  # FastAPI's handler names what is wrong, as on every route
        return await type(self).lean(body, request, scope, settings)


class _EnqueueRoute(_LeanRoute):
    model = EnqueueRequest

    @staticmethod
    async def lean(body: Any, request: Request, scope: Scope, settings: Settings) -> Response:
        return await _enqueue(body, request, scope, settings)


class _BulkRoute(_LeanRoute):
    model = BulkEnqueueRequest

    @staticmethod
    async def lean(body: Any, request: Request, scope: Scope, settings: Settings) -> Response:
        return await _enqueue_bulk(body, request, settings)


async def enqueue(body: EnqueueRequest, request: Request, scope: Write) -> Any:
    """Enqueue a job by task name. With ``job_id`` (or a ``dedupe_key`` still held), a
    second call returns the existing job (``created: false``, status 200)."""
    return await _enqueue(body, request, scope, settings_of(request))


router.add_api_route(
    "/jobs",
    enqueue,
    methods=["POST"],
    status_code=201,
    response_model=JobOut,
    tags=["jobs"],
    responses={200: {"model": JobOut, "description": "an existing job stands for this one"}},
    route_class_override=_EnqueueRoute,
)


async def _enqueue(
    body: EnqueueRequest, request: Request, scope: Scope, settings: Settings
) -> Response:
    corral = settings.corral
    queue, new = prepare(corral, settings, body)
    job = (await corral.submit(queue, [new]))[0]
    detail = {"task": body.task, "created": job.created}
    # The re-read (created_at, run_at as stored; not needed when the backend said
    # when it stored the job) and the audit entry are independent round trips: sent
    # together, a request waits for one of them, not both.
    await asyncio.gather(_reread(job), audited(request, "job.enqueue", f"{queue}/{job.id}", detail))
    payload = job_out(job, scope, settings, created=job.created)
    status = 201 if job.created else 200
    try:
        content = orjson.dumps(payload)
    except TypeError:  # an integer over 64 bits in the payload: the standard encoder
        return JSONResponse(payload, status_code=status)
    return Response(content, status_code=status, media_type="application/json")


async def _reread(job: Job) -> None:
    if not job.created or job.created_at is not None:
        return  # submit read the job that stands for it, or knows when it was stored
    # Stored: a failing re-read must not report the enqueue as failed (a client
    # retrying without job_id would store it twice); answer with what was stored.
    try:
        await job.refresh()
    except BackendError as exc:
        log.warning("job %s stored, re-reading it failed: %s", job.id, exc)


async def enqueue_bulk(body: BulkEnqueueRequest, request: Request, scope: Write) -> Any:
    """Enqueue up to 1,000 jobs in one request, all or nothing: if any job is
    invalid (unknown task, arguments that do not fit its signature, a payload over the
    limit) nothing is stored and the 422 names each bad job as ``jobs.<index>.<field>``.
    Otherwise the jobs are stored with one backend call per queue. Each item takes the
    fields of ``POST /jobs``; ``job_id`` and ``dedupe_key`` make items idempotent
    (``created: false``). Status 201 when any job was created, 200 when none was."""
    return await _enqueue_bulk(body, request, settings_of(request))


router.add_api_route(
    "/jobs/bulk",
    enqueue_bulk,
    methods=["POST"],
    status_code=201,
    response_model=BulkEnqueueOut,
    tags=["jobs"],
    responses={200: {"model": BulkEnqueueOut, "description": "every job already existed"}},
    route_class_override=_BulkRoute,
)


async def _enqueue_bulk(body: BulkEnqueueRequest, request: Request, settings: Settings) -> Response:
    corral = settings.corral
    prepared: list[tuple[str, NewJob]] = []
    errors: list[str] = []
    seen: dict[tuple[Any, ...], Task[Any, Any]] = {}
    for index, item in enumerate(body.jobs):
        try:
            prepared.append(prepare(corral, settings, item, seen))
        except (ValidationError, UnknownTask) as exc:
            errors.append(_item_error(index, str(exc)))
    if errors:
        shown = "; ".join(errors[:_SHOWN_ERRORS])
        more = len(errors) - _SHOWN_ERRORS
        message = f"{len(errors)} of {len(body.jobs)} jobs are invalid, nothing was stored: "
        message += shown + (f"; and {more} more (see detail)" if more > 0 else "")
        return JSONResponse({"error": message, "detail": errors}, status_code=422)
    jobs = await corral.submit_many(prepared)
    created = sum(1 for job in jobs if job.created)
    per_queue: dict[str, list[int]] = {}
    for job in jobs:
        per_queue.setdefault(job.queue, [0, 0])[0 if job.created else 1] += 1
    for queue, (new, existing) in per_queue.items():
        detail = {"created": new, "existing": existing}
        await audited(request, "jobs.enqueue_bulk", queue, detail)
    payload = {
        "jobs": [
            {"id": job.id, "queue": job.queue, "state": job.state.value, "created": job.created}
            for job in jobs
        ],
        "created": created,
    }
    return Response(
        orjson.dumps(payload), status_code=201 if created else 200, media_type="application/json"
    )


def _item_error(index: int, message: str) -> str:
    """``jobs.<index>.<field>: why`` (errors that name their field say ``field: why``)."""
    field, sep, rest = message.partition(": ")
    if sep and field.isidentifier():
        return f"jobs.{index}.{field}: {rest}"
    return f"jobs.{index}: {message}"
