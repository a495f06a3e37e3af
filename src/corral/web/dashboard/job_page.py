"""The job page: state, timeline, live progress and logs, arguments, result, errors,
options, actions, and "run again with edited arguments".

Read-only keys see the job as the API shows it to them (secret-looking arguments,
progress and result entries masked, see :mod:`corral.web.masking`) and no controls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from corral.backends.base import JobState
from corral.blockers import Blocker
from corral.errors import JobNotFound, ValidationError
from corral.job import Job
from corral.web.audit import record_action
from corral.web.auth import Scope
from corral.web.dashboard.flow_graph import layout
from corral.web.dashboard.job_view import bar_of, options_of, timeline_of
from corral.web.dashboard.render import render, url_for
from corral.web.dashboard.session import Viewer, action, viewer_of
from corral.web.deps import job_out, settings_of
from corral.web.schemas import JobId, QueueName

__all__ = ["job_path", "router"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]
Write = Annotated[Viewer, Depends(action(Scope.WRITE))]
Admin = Annotated[Viewer, Depends(action(Scope.ADMIN))]

#: Log lines the page shows (the store keeps the last 1,000).
LOG_LINES = 200
#: Dependencies (and dependents) of a flow job listed on its page, each way.
FLOW_LINKS = 20
#: Spawned children listed on a parent's page (``?children=all``: every one).
CHILD_LINKS = 20
#: The largest JSON text the run-again form takes per field.
MAX_JSON = 1_000_000

_DONE = {
    "retry": "Retried: the job is waiting to run again.",
    "cancel": "Cancel requested.",
    "promote": "Promoted: the job runs as soon as a worker is free.",
}
_PAST = {"retry": "retried", "promote": "promoted", "cancel": "cancelled"}


def job_path(queue: str, job_id: str) -> str:
    """The page of a job, inside the dashboard."""
    return f"/queues/{queue}/jobs/{job_id}"


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


async def _live_context(request: Request, viewer: Viewer, job: Job) -> dict[str, Any]:
    data = job_out(job, viewer.scope, settings_of(request))
    logs = data["logs"]
    blockers: list[Blocker] = []
    if job.state in (JobState.WAITING, JobState.DELAYED):
        with contextlib.suppress(JobNotFound):  # gone since: its next event reloads the page
            blockers = await job.blockers()
    return {
        "job": job,
        "blockers": blockers,
        "data": data,
        "bar": bar_of(data["progress"]),
        "logs": logs[-LOG_LINES:],
        "logs_hidden": max(len(logs) - LOG_LINES, 0),
        "live_url": url_for(request, job_path(job.queue, job.id) + "/live"),
    }


async def _flow_of(request: Request, job: Job) -> dict[str, Any] | None:
    """The flow a job belongs to, with the jobs it waits for and those waiting for it
    (their states read now, up to FLOW_LINKS each); None when it is in no stored flow
    (a child spawned by a running job has no flow page)."""
    if job.flow_id is None:
        return None
    corral = settings_of(request).corral
    try:
        run = await corral.get_flow(job.flow_id, read_jobs=False)
    except JobNotFound:
        return None
    waits_for, needed_by = run.neighbours(job.queue, job.id)

    async def state(queue: str, job_id: str) -> str:
        try:
            return (await corral.get_job(job_id, queue)).state.value
        except JobNotFound:
            return "removed"

    def links(items: list[tuple[str, str, str, str]]) -> list[dict[str, Any]]:
        return [
            {"name": n, "href": job_path(q, i), "policy": p, "queue": q, "id": i}
            for n, q, i, p in items[:FLOW_LINKS]
        ]

    before, after = links(waits_for), links(needed_by)
    shown = [*before, *after]
    states = await asyncio.gather(*(state(item["queue"], item["id"]) for item in shown))
    for item, value in zip(shown, states, strict=True):
        item["state"] = value
    return {
        "id": run.id,
        "waits_for": before,
        "needed_by": after,
        "more_waits": max(len(waits_for) - FLOW_LINKS, 0),
        "more_needed": max(len(needed_by) - FLOW_LINKS, 0),
    }


async def _children_of(request: Request, job: Job, every: bool) -> dict[str, Any] | None:
    """The jobs ``job`` spawned (``WaitForChildren``) for its page: how many in each
    state, the graph of how they depend on one another (when some do: a chain...),
    and the first CHILD_LINKS (all with ``every``); None when it spawned none.
    Spawned children have no flow record, so no flow page: this card stands for one."""
    children, edges = await asyncio.gather(job.children(), job.child_edges())
    if not children:
        return None
    rows = [
        {
            "name": n,
            "href": job_path(c.queue, c.id),
            "queue": c.queue,
            "id": c.id,
            "state": c.state.value,
            "task": c.name,
        }
        for n, c in children.items()
    ]
    counts = Counter(row["state"] for row in rows)
    shown = rows if every else rows[:CHILD_LINKS]
    # Drawn as a flow's page draws it; children removed since (and their edges) left out.
    edges = [e for e in edges if e["from"] in children and e["to"] in children]
    graph = None
    if edges:
        spawn = {"jobs": rows, "edges": edges}
        graph = layout(spawn, lambda queue, job_id: url_for(request, job_path(queue, job_id)))
    return {
        "graph": graph,
        "rows": shown,
        "total": len(rows),
        "more": len(rows) - len(shown),
        "counts": [(s.value, counts[s.value]) for s in JobState if counts[s.value]],
        "queues": len({row["queue"] for row in rows}) > 1 or rows[0]["queue"] != job.queue,
    }


async def _page(
    request: Request,
    viewer: Viewer,
    job: Job,
    *,
    every_child: bool = False,
    status: int = 200,
    flash: str | None = None,
    flash_kind: str = "ok",
    args_text: str | None = None,
    kwargs_text: str | None = None,
    rerun_error: str | None = None,
) -> Response:
    settings = settings_of(request)
    context = await _live_context(request, viewer, job)
    data = context["data"]
    task = settings.corral.tasks.get(job.name)
    return render(
        request,
        "job.html",
        status=status,
        viewer=viewer,
        active="overview",
        steps=timeline_of(job, data["errors"]),
        options=options_of(job, task),
        registered=task is not None or settings.allow_unregistered,
        args_text=_pretty(data["args"]) if args_text is None else args_text,
        kwargs_text=_pretty(data["kwargs"]) if kwargs_text is None else kwargs_text,
        rerun_error=rerun_error,
        flow=await _flow_of(request, job),
        children=await _children_of(request, job, every_child),
        parent=await job.parent(),
        # The live feed's job events refetch the live part while the job may change.
        live=None
        if job.state.terminal
        else urlencode({"counts": 0, "job": f"{job.queue}/{job.id}"}),
        flash=flash,
        flash_kind=flash_kind,
        **context,
    )


@router.get("/queues/{queue}/jobs/{job_id}")
async def job_page(
    request: Request,
    queue: QueueName,
    job_id: JobId,
    viewer: Page,
    done: Annotated[str | None, Query(max_length=20)] = None,
    children: Annotated[Literal["all"] | None, Query()] = None,
) -> Response:
    job = await settings_of(request).corral.get_job(job_id, queue)
    flash = _DONE.get(done or "")
    return await _page(request, viewer, job, flash=flash, every_child=children == "all")


@router.get("/queues/{queue}/jobs/{job_id}/live")
async def job_live(
    request: Request,
    queue: QueueName,
    job_id: JobId,
    viewer: Page,
    seen: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The live part of the page (state, progress, logs). When the state has moved on
    from the one the page shows, the whole page is reloaded instead: result, errors
    and controls change with it."""
    try:
        job = await settings_of(request).corral.get_job(job_id, queue)
    except JobNotFound:
        # Said in place (not a reload to a 404): the remove button's own answer may be
        # on its way to the queue page.
        return render(request, "_job_gone.html", viewer=viewer, queue=queue, job_id=job_id)
    if seen and seen != job.state.value:
        return Response(status_code=200, headers={"HX-Refresh": "true"})
    return render(
        request, "_job_live.html", viewer=viewer, **await _live_context(request, viewer, job)
    )


@router.post("/queues/{queue}/jobs/{job_id}/remove")
async def job_remove(request: Request, queue: QueueName, job_id: JobId, viewer: Admin) -> Response:
    """Delete the job (the form asks for confirmation first); back to its queue."""
    job = await settings_of(request).corral.get_job(job_id, queue)
    if not await job.remove():
        await job.refresh()
        message = f"Job {job_id} is {job.state.value}: cancel it before removing it."
        return await _page(request, viewer, job, status=409, flash=message, flash_kind="error")
    await record_action(settings_of(request).corral, viewer.name, "job.remove", f"{queue}/{job_id}")
    return RedirectResponse(url_for(request, f"/queues/{queue}?removed={job_id}"), 303)


def _parse(text: str, kind: type, what: str) -> Any:
    """JSON text of ``kind`` (list or dict) or a ValidationError naming what is wrong."""
    try:
        value = orjson.loads(text.strip() or ("[]" if kind is list else "{}"))
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(value, kind):
        wanted = "a JSON list, like [1, 2]" if kind is list else 'a JSON object, like {"a": 1}'
        raise ValidationError(f"{what}: must be {wanted}")
    return value


@router.post("/queues/{queue}/jobs/{job_id}/run-again")
async def run_again(
    request: Request,
    queue: QueueName,
    job_id: JobId,
    viewer: Write,
    args: Annotated[str, Form(max_length=MAX_JSON)] = "[]",
    kwargs: Annotated[str, Form(max_length=MAX_JSON)] = "{}",
) -> Response:
    """A new job of the same task with the edited arguments; a problem shows the form
    again with a message naming it."""
    settings = settings_of(request)
    job = await settings.corral.get_job(job_id, queue)
    try:
        if job.name not in settings.corral.tasks and not settings.allow_unregistered:
            raise ValidationError(
                f"task {job.name!r} is not registered in this server's app, so its "
                "arguments cannot be checked"
            )
        new = await job.run_again(
            _parse(args, list, "positional arguments"), _parse(kwargs, dict, "keyword arguments")
        )
    except ValidationError as exc:
        return await _page(
            request,
            viewer,
            job,
            status=422,
            args_text=args,
            kwargs_text=kwargs,
            rerun_error=str(exc),
        )
    detail = {"new": f"{new.queue}/{new.id}"}
    await record_action(settings.corral, viewer.name, "job.run_again", f"{queue}/{job_id}", detail)
    return RedirectResponse(url_for(request, job_path(new.queue, new.id)), status_code=303)


# Last: its {act} segment would otherwise catch /remove and /run-again.
@router.post("/queues/{queue}/jobs/{job_id}/{act}")
async def job_action(
    request: Request,
    queue: QueueName,
    job_id: JobId,
    act: Literal["retry", "cancel", "promote"],
    viewer: Write,
) -> Response:
    """Retry, cancel or promote; back to the page with what happened."""
    job = await settings_of(request).corral.get_job(job_id, queue)
    if act == "cancel":
        await job.cancel()
        done = True
    else:
        done = await (job.retry() if act == "retry" else job.promote())
    if not done:
        await job.refresh()
        message = f"Job {job_id} is {job.state.value}; it cannot be {_PAST[act]}."
        return await _page(request, viewer, job, status=409, flash=message, flash_kind="error")
    corral = settings_of(request).corral
    await record_action(corral, viewer.name, f"job.{act}", f"{queue}/{job_id}")
    target = url_for(request, job_path(queue, job_id)) + f"?done={act}"
    return RedirectResponse(target, status_code=303)
