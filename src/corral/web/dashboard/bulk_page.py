"""Bulk actions from the queue page: on the ticked jobs or on every job the search
matches. The first post shows what would happen and asks; the confirmed post acts
and goes back to the queue page with the result."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from corral.errors import ValidationError
from corral.search import JobFilter
from corral.web.auth import Scope
from corral.web.dashboard.listing import Criteria
from corral.web.dashboard.queue_page import ACTIONS
from corral.web.dashboard.render import render, url_for
from corral.web.dashboard.session import Refused, Viewer, action
from corral.web.deps import settings_of
from corral.web.schemas import QueueName, State

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Write = Annotated[Viewer, Depends(action(Scope.WRITE))]
Text = Annotated[str, Form(max_length=200)]
#: Most ids one form may tick (a page holds 50; the bulk call takes 10,000).
MAX_IDS = 1000


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
    except ValidationError as exc:
        problem = str(exc)
    if problem is None and confirm == "yes":
        try:
            result = await handle.bulk(act, ids=chosen, filter=flt)
        except ValidationError as exc:
            problem = str(exc)
        else:
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
