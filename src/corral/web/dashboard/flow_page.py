"""The flow pages: ``/flows`` lists recent flows (state, progress, created), newest
first, paged by cursor; ``/flows/<id>`` draws a flow as a graph (see
:mod:`~corral.web.dashboard.flow_graph`): its jobs in columns by depth with their
states and links, arrows for the edges with their policies. Both refresh every few
seconds while something on them runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from corral.web.audit import record_action
from corral.web.auth import Scope
from corral.web.dashboard.flow_graph import columns, layout
from corral.web.dashboard.job_page import job_path
from corral.web.dashboard.render import render, url_for
from corral.web.dashboard.session import Viewer, action, viewer_of
from corral.web.deps import settings_of
from corral.web.flows_api import FlowId

__all__ = ["columns", "router"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]
Write = Annotated[Viewer, Depends(action(Scope.WRITE))]

#: Seconds between refreshes while a flow runs.
REFRESH_SECONDS = 3
#: Flows per page of the listing.
PAGE_SIZE = 20
#: Dependencies listed in the table below the graph before it folds away, and at most.
EDGES_OPEN, EDGES_SHOWN = 30, 200


@router.get("/flows")
async def flows_list(
    request: Request,
    viewer: Page,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    page = await settings_of(request).corral.list_flows(PAGE_SIZE, cursor=cursor)
    rows = [run.to_dict() for run in page.flows]
    for row in rows:
        row["created"] = datetime.fromtimestamp(row["created_at"] / 1000, tz=UTC)
    running = any(row["state"] == "running" for row in rows)
    return render(
        request,
        "flows.html",
        viewer=viewer,
        active="flows",
        flows=rows,
        cursor=cursor,
        next_cursor=page.next_cursor,
        refresh=REFRESH_SECONDS if running else 0,
    )


@router.get("/flows/{flow_id}")
async def flow_view(
    request: Request,
    flow_id: FlowId,
    viewer: Page,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    run = await settings_of(request).corral.get_flow(flow_id)
    flow = run.to_dict()
    graph = layout(flow, lambda queue, job_id: url_for(request, job_path(queue, job_id)))
    return render(
        request,
        "flow.html",
        viewer=viewer,
        active="flows",
        flow=flow,
        graph=graph,
        created=datetime.fromtimestamp(flow["created_at"] / 1000, tz=UTC),
        edges_open=len(flow["edges"]) <= EDGES_OPEN,
        edges_shown=EDGES_SHOWN,
        refresh=REFRESH_SECONDS if flow["state"] == "running" else 0,
        flash=_DONE.get(done or ""),
    )


_DONE = {
    "cancel": "Cancel requested: unfinished jobs are cancelled, running ones asked to stop.",
    "retry": "Retried: the failed and cancelled jobs run again.",
}


@router.post("/flows/{flow_id}/cancel")
async def flow_cancel(request: Request, flow_id: FlowId, viewer: Write) -> Response:
    corral = settings_of(request).corral
    count = await (await corral.get_flow(flow_id)).cancel()
    await record_action(corral, viewer.name, "flow.cancel", flow_id, {"jobs": count})
    return RedirectResponse(url_for(request, f"/flows/{flow_id}?done=cancel"), 303)


@router.post("/flows/{flow_id}/retry-failed")
async def flow_retry(request: Request, flow_id: FlowId, viewer: Write) -> Response:
    corral = settings_of(request).corral
    count = await (await corral.get_flow(flow_id, read_jobs=False)).retry_failed()
    await record_action(corral, viewer.name, "flow.retry", flow_id, {"jobs": count})
    return RedirectResponse(url_for(request, f"/flows/{flow_id}?done=retry"), 303)
