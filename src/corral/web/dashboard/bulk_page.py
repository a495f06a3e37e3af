"""Bulk actions from the queue page: on the ticked jobs or on every job the search
matches. The first post shows what would happen and asks; the confirmed post acts
and goes back to the queue page with the result. An action on a filter runs in the
background (see :mod:`.bulk_runs`): when it takes more than :data:`QUICK` seconds, a
page shows its progress until it is done."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from corral.errors import ValidationError
from corral.search import BULK_ACTIONS, BulkResult, JobFilter
from corral.web.audit import record_action
from corral.web.auth import Scope
from corral.web.dashboard.bulk_runs import BulkRun, BulkRuns, Progress
from corral.web.dashboard.listing import Criteria
from corral.web.dashboard.queue_page import ACTIONS
from corral.web.dashboard.render import render, url_for
from corral.web.dashboard.session import Refused, Viewer, action, viewer_of
from corral.web.deps import settings_of
from corral.web.schemas import QueueName, State

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Write = Annotated[Viewer, Depends(action(Scope.WRITE))]
Text = Annotated[str, Form(max_length=200)]
Token = Annotated[str, Path(min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Page = Annotated[Viewer, Depends(viewer_of)]
#: Most ids one form may tick (a page holds 50; the bulk call takes 10,000).
MAX_IDS = 1000
#: Seconds a filter's bulk action may take before the answer is its progress page.
QUICK = 1.0
_DONE = {"retry": "Retrying", "promote": "Promoting", "cancel": "Cancelling", "remove": "Removing"}


def _counted(result: BulkResult) -> dict[str, int]:
    return {"matched": result.matched, "changed": result.changed}


def runs_of(request: Request) -> BulkRuns:
    """The app's background bulk runs."""
    runs: BulkRuns = request.app.state.corral_bulk_runs
    return runs


def _result_url(request: Request, queue: str, back: str, act: str, run: BulkRun) -> str:
    result = run.result
    assert result is not None
    query = f"bulk={act}&matched={result.matched}&changed={result.changed}"
    query += f"&skipped={result.skipped}"
    return url_for(request, f"/queues/{queue}?{back}{'&' if back else ''}{query}")


@router.post("/queues/{queue}/bulk")
async def bulk(
    request: Request,
    queue: QueueName,
    viewer: Write,
    act: Annotated[Literal["retry", "cancel", "promote", "remove"], Form(alias="action")],
    target: Annotated[Literal["selected", "matching"], Query()],
    state: Annotated[State, Form()],
    ids: Annotated[list[str] | None, Form(max_length=MAX_IDS)] = None,
    task: Text = "",
    text: Text = "",
    error: Text = "",
    group: Text = "",
    since: Text = "",
    until: Text = "",
    found: Annotated[int, Form(ge=0)] = 0,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    if act == "remove" and not viewer.is_admin:
        raise Refused(f"your key has {viewer.scope.name.lower()} scope; admin is needed for this")
    criteria = Criteria(state, task, text, error, group, since, until)
    handle = settings_of(request).corral.queue(queue)
    back = url_for(request, f"/queues/{queue}?{criteria.query()}")
    chosen = [i for i in (ids or []) if i] if target == "selected" else None
    problem = None
    flt: JobFilter | None = None
    try:
        if chosen is not None and not chosen:
            raise ValidationError("tick at least one job, or apply the action to all matching")
        if chosen is None:
            flt = criteria.to_filter()
            if flt.job_state not in BULK_ACTIONS[act]:
                states = ", ".join(sorted(s.value for s in BULK_ACTIONS[act]))
                raise ValidationError(f"{act} applies to {states} jobs, not {state} ones")
    except ValidationError as exc:
        problem = str(exc)
    if problem is None and confirm == "yes" and flt is not None:
        total = (await handle.counts()).get(state, 0)
        word = f"{_DONE[act]} every {state} job" + (
            f" that matches {criteria.described()}" if criteria.searching else ""
        )
        run = BulkRun(queue, act, word, total=total, back=criteria.query())
        runs = runs_of(request)
        filt, corral, who = flt, settings_of(request).corral, viewer.name

        async def work(progress: Progress) -> BulkResult:
            result = await handle.bulk(act, filter=filt, progress=progress)
            detail = {"action": act, "by": "filter", **_counted(result)}
            await record_action(corral, who, "queue.bulk", queue, detail)
            return result

        token = runs.start(run, work)
        assert run.task is not None
        with contextlib.suppress(TimeoutError):  # most runs are done by then
            async with asyncio.timeout(QUICK):
                await asyncio.shield(run.task)
        if run.running or run.error:
            return RedirectResponse(url_for(request, f"/queues/{queue}/bulk/{token}"), 303)
        return RedirectResponse(_result_url(request, queue, run.back, act, run), 303)
    if problem is None and confirm == "yes":
        try:
            result = await handle.bulk(act, ids=chosen, filter=flt)
        except ValidationError as exc:
            problem = str(exc)
        else:
            detail = {"action": act, "by": "ids", **_counted(result)}
            corral = settings_of(request).corral
            await record_action(corral, viewer.name, "queue.bulk", queue, detail)
            query = criteria.query(
                bulk=act,
                matched=str(result.matched),
                changed=str(result.changed),
                skipped=str(result.skipped),
            )
            return RedirectResponse(url_for(request, f"/queues/{queue}?{query}"), 303)
    counts = await handle.counts()
    return render(
        request,
        "bulk_confirm.html",
        status=422 if problem else 200,
        viewer=viewer,
        active="overview",
        queue=queue,
        act=act,
        label=ACTIONS[act],
        target=target,
        ids=chosen or [],
        criteria=criteria,
        total=counts.get(state, 0),
        found=found,
        problem=problem,
        back=back,
    )


def _unknown(request: Request) -> Response:
    message = (
        "no such bulk action here: it finished more than 10 minutes ago, "
        "or it runs in another server process"
    )
    return render(request, "error.html", status=404, title="Not found", message=message)


@router.get("/queues/{queue}/bulk/{token}")
async def bulk_progress(request: Request, queue: QueueName, token: Token, viewer: Page) -> Response:
    """A filter's bulk action under way: how far it got (the page asks again every
    second); done, it goes back to the queue page with the result."""
    run = runs_of(request).get(token)
    if run is None or run.queue != queue:
        return _unknown(request)
    if not run.running and run.error is None:
        return RedirectResponse(_result_url(request, queue, run.back, run.action, run), 303)
    return render(
        request, "bulk_progress.html", viewer=viewer, active="overview", run=run, token=token
    )


@router.get("/queues/{queue}/bulk/{token}/status")
async def bulk_status(request: Request, queue: QueueName, token: Token, viewer: Page) -> Response:
    """The progress part of that page; once the run is done, htmx is sent on to the
    queue page with the result."""
    run = runs_of(request).get(token)
    if run is None or run.queue != queue:
        return Response(status_code=200, headers={"HX-Refresh": "true"})
    if not run.running and run.error is None:
        target = _result_url(request, queue, run.back, run.action, run)
        return Response(status_code=200, headers={"HX-Redirect": target})
    return render(request, "_bulk_status.html", viewer=viewer, run=run, token=token)
