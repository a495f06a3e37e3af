"""The ``/api/v1/schedules/{name}/...`` actions: run now, pause, resume (the twins of
``corral schedules run|pause|resume``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from corral.web.audit import audited
from corral.web.auth import Scope
from corral.web.deps import job_out, require, settings_of
from corral.web.schemas import COMMON_ERRORS, JobOut, Problem, ScheduleName, ScheduleOut

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", responses=COMMON_ERRORS, tags=["schedules"])

Write = Annotated[Scope, Depends(require(Scope.WRITE))]
Admin = Annotated[Scope, Depends(require(Scope.ADMIN))]

_UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such schedule"}
}


@router.post("/schedules/{name}/run", status_code=201, response_model=JobOut, responses=_UNKNOWN)
async def run_schedule(name: ScheduleName, request: Request, scope: Write) -> Any:
    """Enqueue the schedule's job now, paused or not; its next fire time stays as it is."""
    settings = settings_of(request)
    job = await settings.corral.schedules.run_now(name)
    await audited(request, "schedule.run", name, {"job": f"{job.queue}/{job.id}"})
    return JSONResponse(job_out(job, scope, settings, created=True), status_code=201)


@router.post("/schedules/{name}/pause", response_model=ScheduleOut, responses=_UNKNOWN)
async def pause_schedule(name: ScheduleName, request: Request, scope: Admin) -> Any:
    """Stop the schedule firing: its ticks are skipped until it is resumed."""
    schedule = await settings_of(request).corral.schedules.pause(name)
    await audited(request, "schedule.pause", name)
    return schedule.to_dict()


@router.post("/schedules/{name}/resume", response_model=ScheduleOut, responses=_UNKNOWN)
async def resume_schedule(name: ScheduleName, request: Request, scope: Admin) -> Any:
    """Fire again, from the first tick after now."""
    schedule = await settings_of(request).corral.schedules.resume(name)
    await audited(request, "schedule.resume", name)
    return schedule.to_dict()
