"""The flow page: a flow's jobs drawn in columns by depth (a job stands right of every
job it waits for), each with its state and a link to its page, and the edges with their
policies; refreshed every few seconds while the flow runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from corral.web.dashboard.render import render
from corral.web.dashboard.session import Viewer, viewer_of
from corral.web.deps import settings_of
from corral.web.flows_api import FlowId

__all__ = ["columns", "router"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]

#: Seconds between refreshes while the flow runs.
REFRESH_SECONDS = 3


def columns(flow: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The flow's jobs by depth: 0 for jobs that wait for nothing, else one more than
    the deepest job they wait for (the graph is acyclic)."""
    after: dict[str, list[str]] = {job["name"]: [] for job in flow["jobs"]}
    for edge in flow["edges"]:
        after[edge["to"]].append(edge["from"])
    depth: dict[str, int] = {}
    for start in after:
        stack = [start]
        while stack:
            name = stack[-1]
            pending = [d for d in after[name] if d not in depth]
            if pending:
                stack += pending
                continue
            stack.pop()
            depth[name] = 1 + max((depth[d] for d in after[name]), default=-1)
    out: list[list[dict[str, Any]]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for job in flow["jobs"]:
        out[depth[job["name"]]].append({**job, "after": after[job["name"]]})
    return out


@router.get("/flows/{flow_id}")
async def flow_view(request: Request, flow_id: FlowId, viewer: Page) -> Response:
    run = await settings_of(request).corral.get_flow(flow_id)
    flow = run.to_dict()
    return render(
        request,
        "flow.html",
        viewer=viewer,
        flow=flow,
        columns=columns(flow),
        refresh=REFRESH_SECONDS if flow["state"] == "running" else 0,
    )
