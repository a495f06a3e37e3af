"""The enqueue page (write scope): a job of a task this server's app registers, with JSON
arguments checked against the task's signature and the usual options.

The checks are the API's (``POST /api/v1/jobs``): the task must be registered unless the
server allows unregistered names, and ``Corral.enqueue`` binds the arguments to the
signature and validates every option. Anything wrong shows the form again, as typed,
with a message naming the problem; nothing is stored.
"""

from __future__ import annotations

import inspect
import math
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from corral.errors import ConfigurationError, UnknownTask, ValidationError
from corral.web.audit import record_action
from corral.web.auth import Scope
from corral.web.dashboard.job_page import MAX_JSON, _parse
from corral.web.dashboard.render import render, url_for
from corral.web.dashboard.session import Refused, Viewer, action, viewer_of
from corral.web.deps import Settings, settings_of

__all__ = ["router", "signature_text"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]
Write = Annotated[Viewer, Depends(action(Scope.WRITE))]
Text = Annotated[str, Form(max_length=200)]


class _Shown(str):
    """An annotation kept as text (``from __future__ import annotations``), shown bare."""

    def __repr__(self) -> str:
        return str(self)


def signature_text(signature: inspect.Signature) -> str:
    """The parameters as a person reads them: ``(store: str, pages: int = 4)``."""
    params = [
        p.replace(annotation=_Shown(p.annotation)) if isinstance(p.annotation, str) else p
        for p in signature.parameters.values()
    ]
    return str(signature.replace(parameters=params, return_annotation=inspect.Signature.empty))


def _tasks(settings: Settings) -> list[dict[str, str]]:
    """The registered tasks, each with its queue and signature (the form's choices)."""
    return [
        {"name": name, "queue": task.queue, "signature": signature_text(task.signature)}
        for name, task in sorted(settings.corral.tasks.items())
    ]


async def _form(
    request: Request,
    viewer: Viewer,
    values: dict[str, str],
    *,
    status: int = 200,
    error: str | None = None,
    created: dict[str, Any] | None = None,
) -> Response:
    settings = settings_of(request)
    tasks = _tasks(settings)
    queues = sorted(
        {q.name for q in await settings.corral.overview()} | {t["queue"] for t in tasks}
    )
    return render(
        request,
        "enqueue.html",
        status=status,
        viewer=viewer,
        active="enqueue",
        tasks=tasks,
        queues=queues,
        free_names=settings.allow_unregistered,
        values=values,
        error=error,
        created=created,
    )


def _number(text: str, what: str, kind: type[float]) -> float | None:
    """An optional number field: None when blank, else the value or a ValidationError."""
    text = text.strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        wanted = "a whole number" if kind is int else "a number of seconds"
        raise ValidationError(f"{what}: must be {wanted}, got {text!r}") from None
    if not math.isfinite(value):
        raise ValidationError(f"{what}: must be a finite number, got {text!r}")
    return value


def _priority(text: str) -> int | None:
    value = _number(text, "priority", int)
    return None if value is None else int(value)


@router.get("/enqueue")
async def enqueue_form(
    request: Request,
    viewer: Page,
    task: Annotated[str, Query(max_length=200)] = "",
    queue: Annotated[str, Query(max_length=100)] = "",
    job: Annotated[str, Query(max_length=200)] = "",
    existing: Annotated[bool, Query()] = False,
) -> Response:
    if not viewer.can_write:
        raise Refused(f"your key has {viewer.scope.name.lower()} scope; write is needed for this")
    created = {"queue": queue, "id": job, "existing": existing} if job and queue else None
    return await _form(request, viewer, {"task": task}, created=created)


@router.post("/enqueue")
async def enqueue(
    request: Request,
    viewer: Write,
    task: Text = "",
    queue: Annotated[str, Form(max_length=100)] = "",
    args: Annotated[str, Form(max_length=MAX_JSON)] = "",
    kwargs: Annotated[str, Form(max_length=MAX_JSON)] = "",
    priority: Annotated[str, Form(max_length=20)] = "",
    delay: Annotated[str, Form(max_length=30)] = "",
    group: Text = "",
    dedupe_key: Text = "",
) -> Response:
    """Enqueue the job; on to the form with a link to it, or back with what was wrong."""
    values = {
        "task": task,
        "queue": queue,
        "args": args,
        "kwargs": kwargs,
        "priority": priority,
        "delay": delay,
        "group": group,
        "dedupe_key": dedupe_key,
    }
    settings = settings_of(request)
    name = task.strip()
    try:
        if not name:
            raise ValidationError("task: pick a task")
        if name not in settings.corral.tasks and not settings.allow_unregistered:
            raise UnknownTask(f"task: no task named {name!r} is registered in this server's app")
        job = await settings.corral.enqueue(
            name,
            _parse(args, list, "positional arguments"),
            _parse(kwargs, dict, "keyword arguments"),
            queue=queue.strip() or None,
            priority=_priority(priority),
            delay=_number(delay, "delay", float),
            group=group.strip() or None,
            dedupe_key=dedupe_key.strip() or None,
        )
    except (ValidationError, UnknownTask, ConfigurationError) as exc:
        return await _form(request, viewer, values, status=422, error=str(exc))
    detail = {"task": name, "created": job.created}
    await record_action(
        settings.corral, viewer.name, "job.enqueue", f"{job.queue}/{job.id}", detail
    )
    query = {"task": name, "queue": job.queue, "job": job.id}
    if not job.created:
        query["existing"] = "1"
    return RedirectResponse(url_for(request, "/enqueue?" + urlencode(query)), status_code=303)
