"""The ``/api/v1/flows`` routes: start a flow (jobs and their dependencies, by name),
read it with its jobs and edges, cancel it. A thin layer over ``Corral.start_flow``
and :class:`~corral.flow_run.FlowRun`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from corral.errors import UnknownTask
from corral.flow import MAX_FLOW_ID, Dep, Flow
from corral.policy import JOB_ID, KEY, QUEUE_NAME, TASK_NAME
from corral.task import Call
from corral.web.audit import audited
from corral.web.auth import Scope
from corral.web.deps import require, settings_of
from corral.web.schemas import COMMON_ERRORS, JsonValue, OptionalInteger, Problem, Seconds

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", responses=COMMON_ERRORS, tags=["flows"])

Read = Annotated[Scope, Depends(require(Scope.READ))]
Write = Annotated[Scope, Depends(require(Scope.WRITE))]


def _whole(pattern: str) -> str:
    return f"^(?:{pattern})$"


FlowId = Annotated[str, Path(min_length=1, max_length=MAX_FLOW_ID, pattern=_whole(JOB_ID))]
_UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "no such flow"}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DependencyIn(_Strict):
    """A dependency on another job of the flow, by its name, with its policy."""

    job: str = Field(min_length=1, max_length=200, pattern=_whole(KEY))
    on_failure: Literal["fail", "skip", "ignore"] = "fail"
    pass_result: StrictBool = Field(
        default=False, description="the dependency's result becomes the first argument"
    )


class FlowJobIn(_Strict):
    """One job of a flow: a task call, its name in the flow and what it waits for."""

    name: str = Field(min_length=1, max_length=200, pattern=_whole(KEY), examples=["fetch"])
    task: str = Field(min_length=1, max_length=200, pattern=_whole(TASK_NAME))
    args: list[JsonValue] = Field(default_factory=list)
    kwargs: dict[str, JsonValue] = Field(default_factory=dict)
    queue: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=_whole(QUEUE_NAME)
    )
    priority: OptionalInteger = Field(default=None, ge=-1000, le=1000)
    attempts: OptionalInteger = Field(default=None, ge=1, le=1000)
    timeout: Seconds | None = Field(default=None, gt=0, le=30 * 86400, description="seconds")
    after: list[DependencyIn] = Field(default_factory=list, max_length=10_000)


class FlowRequest(_Strict):
    """A flow to start. With ``flow_id``, starting it again returns the stored flow."""

    flow_id: str | None = Field(
        default=None, min_length=1, max_length=MAX_FLOW_ID, pattern=_whole(JOB_ID)
    )
    jobs: list[FlowJobIn] = Field(min_length=1, max_length=10_000)
    fail_fast: StrictBool = Field(
        default=False,
        description="a job failing for good cancels every unfinished job of the flow",
    )


class FlowJobOut(BaseModel):
    name: str
    queue: str
    id: str
    state: str | None = Field(description="None: the job was removed")
    task: str | None = None
    attempts: int | None = None


class FlowEdgeOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", description="the dependency")
    to: str = Field(description="the job that waits for it")
    on_failure: Literal["fail", "skip", "ignore"]
    pass_result: bool


class FlowProgress(BaseModel):
    done: int
    total: int


class FlowOut(BaseModel):
    id: str
    state: Literal["running", "completed", "failed", "cancelled"]
    progress: FlowProgress
    created_at: int = Field(description="ms since the epoch")
    fail_fast: bool = False
    jobs: list[FlowJobOut]
    edges: list[FlowEdgeOut]
    created: bool | None = None


@router.post(
    "/flows",
    status_code=201,
    response_model=FlowOut,
    response_model_by_alias=True,
    responses={200: {"model": FlowOut, "description": "the flow id was stored already"}},
)
async def start_flow(body: FlowRequest, request: Request, scope: Write) -> Any:
    """Start a flow: each job runs once the jobs it names in ``after`` have ended
    (a cycle or an unknown name is refused with 422, naming it)."""
    settings = settings_of(request)
    corral = settings.corral
    flow = Flow()
    for job in body.jobs:
        if job.task not in corral.tasks and not settings.allow_unregistered:
            raise UnknownTask(
                f"jobs: no task named {job.task!r} is registered in this server's app"
            )
        task = corral._task_for(job.task, job.queue).options(
            priority=job.priority, attempts=job.attempts, timeout=job.timeout
        )
        flow.add(
            Call(task, tuple(job.args), dict(job.kwargs)),
            name=job.name,
            after=[Dep(d.job, d.on_failure, d.pass_result) for d in job.after],
        )
    run = await corral.start_flow(flow, flow_id=body.flow_id, fail_fast=body.fail_fast)
    await audited(request, "flow.start", run.id, {"jobs": len(body.jobs), "created": run.created})
    payload = run.to_dict() | {"created": run.created}
    return JSONResponse(payload, status_code=201 if run.created else 200)


class FlowPageOut(BaseModel):
    flows: list[FlowOut]
    next_cursor: str | None = Field(description="the next page's cursor (None: the last)")


@router.get("/flows", response_model=FlowPageOut, response_model_by_alias=True)
async def list_flows(
    request: Request,
    scope: Read,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=220, pattern=r"^[0-9]{1,16}-" + JOB_ID + "$")
    ] = None,
) -> Any:
    """Flows newest first, each with its state, progress, jobs and edges; pass
    ``next_cursor`` as ``cursor`` for the next page."""
    page = await settings_of(request).corral.list_flows(limit, cursor=cursor)
    return {"flows": [run.to_dict() for run in page.flows], "next_cursor": page.next_cursor}


@router.get("/flows/{flow_id}", response_model=FlowOut, responses=_UNKNOWN)
async def get_flow(flow_id: FlowId, request: Request, scope: Read) -> Any:
    """A flow with its state, progress, jobs and edges."""
    run = await settings_of(request).corral.get_flow(flow_id)
    return run.to_dict()


@router.post("/flows/{flow_id}/cancel", response_model=FlowOut, responses=_UNKNOWN)
async def cancel_flow(flow_id: FlowId, request: Request, scope: Write) -> Any:
    """Cancel every unfinished job of the flow (running ones are asked to stop)."""
    run = await settings_of(request).corral.get_flow(flow_id)
    count = await run.cancel()
    await audited(request, "flow.cancel", flow_id, {"jobs": count})
    return run.to_dict()


@router.post(
    "/flows/{flow_id}/retry-failed",
    response_model=FlowOut,
    responses=_UNKNOWN | {409: {"model": Problem, "description": "the flow is still running"}},
)
async def retry_failed_flow(flow_id: FlowId, request: Request, scope: Write) -> Any:
    """Run the flow's failed and cancelled jobs again, after those they depend on;
    completed jobs are not run again."""
    run = await settings_of(request).corral.get_flow(flow_id)
    count = await run.retry_failed()
    await audited(request, "flow.retry", flow_id, {"jobs": count})
    return run.to_dict()
