"""The schedules page: every cron and interval schedule, in words, with its next and
last fire; "run now" for write keys, pause and resume for admin keys (the same scopes
as ``POST /api/v1/schedules/{name}/...``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from cron_descriptor import ExpressionDescriptor
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from corral.schedules import Schedule, ScheduleSpec, cron_fields
from corral.web.audit import record_action
from corral.web.auth import Scope
from corral.web.dashboard.render import render, url_for
from corral.web.dashboard.session import Viewer, action, viewer_of
from corral.web.deps import Settings, settings_of
from corral.web.masking import MASK, mask

__all__ = ["arguments_text", "cron_words", "interval_words", "router"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]
Write = Annotated[Viewer, Depends(action(Scope.WRITE))]
Admin = Annotated[Viewer, Depends(action(Scope.ADMIN))]
Name = Annotated[str, Path(min_length=1, max_length=200)]

_UNITS = [(86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")]


def interval_words(seconds: float) -> str:
    """``every=`` in words: "Every 5 minutes", "Every 90 seconds", "Every 0.5 seconds"."""
    for size, unit in _UNITS:
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    return f"Every {seconds:g} seconds"


def cron_words(expression: str) -> str:
    """A cron expression in words, 24-hour clock ("At 09:00, only on Monday"); the
    expression itself when the describer cannot read it."""
    try:
        return str(
            ExpressionDescriptor(
                cron_fields(expression), use_24hour_time_format=True
            ).get_description()
        )
    except Exception:  # a third-party parser: any failure just means no words
        return expression


def _when_words(spec: ScheduleSpec) -> str:
    if spec.cron is not None:
        words = cron_words(spec.cron)
        return words if spec.tz == "UTC" else f"{words} ({spec.tz})"
    assert spec.every is not None
    return interval_words(spec.every)


def _relative(at: datetime | None, now: datetime) -> str:
    """ "in 4 min", "2 h ago": how far a time is from now, roughly."""
    if at is None:
        return ""
    seconds = (at - now).total_seconds()
    size = abs(seconds)
    if size < 60:
        amount = f"{size:.0f} s"
    elif size < 3600:
        amount = f"{size // 60:.0f} min"
    elif size < 86400 * 2:
        amount = f"{size // 3600:.0f} h"
    else:
        amount = f"{size // 86400:.0f} days"
    return f"in {amount}" if seconds >= 0 else f"{amount} ago"


def _shown(value: Any) -> str:
    return MASK if value is MASK else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def arguments_text(spec: ScheduleSpec, settings: Settings, *, masked: bool) -> str:
    """The schedule's arguments as a call's inside, ``"a@b.c", subject="Hi"``; for
    read-only keys every value under a secret-looking name is ``***`` (as on job pages)."""
    args: list[Any] = list(spec.args)
    kwargs: dict[str, Any] = dict(spec.kwargs)
    if masked:
        task = settings.corral.tasks.get(spec.task)
        names: list[str | None] = list(task.param_names) if task else []
        if task is not None:
            params = task.signature.parameters.values()
            rest = next((p.name for p in params if p.kind is p.VAR_POSITIONAL), None)
            names += [rest] * max(len(args) - len(names), 0)
        names += [None] * max(len(args) - len(names), 0)
        args = [
            MASK if name is not None and settings.is_secret(name) else mask(value, settings)
            for name, value in zip(names, args, strict=False)
        ]
        kwargs = mask(kwargs, settings)
    parts = [_shown(v) for v in args] + [f"{k}={_shown(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _row(schedule: Schedule, now: datetime, settings: Settings, masked: bool) -> dict[str, Any]:
    spec = schedule.spec
    return {
        "arguments": arguments_text(spec, settings, masked=masked),
        "name": spec.name,
        "queue": spec.queue,
        "task": spec.task,
        "words": _when_words(spec),
        "expression": spec.cron if spec.cron is not None else f"every {spec.every:g} s",
        "next": schedule.next_run_at,
        "next_in": _relative(schedule.next_run_at, now),
        "last": schedule.last_run_at,
        "last_ago": _relative(schedule.last_run_at, now),
        "paused": spec.paused,
        "catch_up": spec.catch_up,
    }


_DONE = {"pause": "paused", "resume": "resumed"}


@router.get("/schedules")
async def schedules(
    request: Request,
    viewer: Page,
    done: Annotated[Literal["pause", "resume"] | None, Query()] = None,
    name: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    now = datetime.now(UTC)
    settings = settings_of(request)
    masked = not viewer.can_write
    rows = [_row(s, now, settings, masked) for s in await settings.corral.schedules.list()]
    flash = f"Schedule {name} {_DONE[done]}." if done and name else None
    return render(request, "schedules.html", active="schedules", rows=rows, flash=flash)


@router.post("/schedules/{name}/run")
async def run_now(request: Request, name: Name, viewer: Write) -> Response:
    """Enqueue the schedule's job now (its ticks stay as they are); on to the new job."""
    corral = settings_of(request).corral
    job = await corral.schedules.run_now(name)
    detail = {"job": f"{job.queue}/{job.id}"}
    await record_action(corral, viewer.name, "schedule.run", name, detail)
    return RedirectResponse(url_for(request, f"/queues/{job.queue}/jobs/{job.id}"), 303)


@router.post("/schedules/{name}/{act}")
async def pause_or_resume(
    request: Request, name: Name, act: Literal["pause", "resume"], viewer: Admin
) -> Response:
    """Pause or resume a schedule; back to the list with what happened."""
    found = settings_of(request).corral.schedules
    await (found.pause(name) if act == "pause" else found.resume(name))
    await record_action(settings_of(request).corral, viewer.name, f"schedule.{act}", name)
    target = url_for(request, "/schedules") + "?" + urlencode({"done": act, "name": name})
    return RedirectResponse(target, status_code=303)
