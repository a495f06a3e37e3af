"""The ``/api/v1`` routes: a thin layer over the Queue and Job API."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from corral.backends.base import WorkerInfo
from corral.errors import InvalidTransition
from corral.health import HEALTH_RULE, judge
from corral.job import Job
from corral.search import JobFilter
from corral.web.audit import audited
from corral.web.auth import Scope
from corral.web.deps import Settings, job_out, require, settings_of
from corral.web.schemas import (
    ACTION_ERRORS,
    COMMON_ERRORS,
    JOB_ERRORS,
    BlockersOut,
    CleanRequest,
    Count,
    HistoryOut,
    JobId,
    JobOut,
    JobPage,
    QueueName,
    QueueOut,
    State,
    WorkerOut,
    problems,
)
from corral.web.search_schemas import CURSOR, BulkOut, BulkRequest, Moment, SearchOut, Text

__all__ = ["HEALTH_RULE", "router"]

router = APIRouter(prefix="/api/v1", responses=COMMON_ERRORS)
log = logging.getLogger("corral.web")

Read = Annotated[Scope, Depends(require(Scope.READ))]
Write = Annotated[Scope, Depends(require(Scope.WRITE))]
Admin = Annotated[Scope, Depends(require(Scope.ADMIN))]

#: Cursors of the API's first versions were offsets (digits): still taken, up to this.
_LAST_OFFSET = 9_999_999


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=JOB_ERRORS)
async def find_job(job_id: JobId, request: Request, scope: Read) -> Any:
    """A job by id, searching every queue."""
    settings = settings_of(request)
    return await _one_job(await settings.corral.get_job(job_id), scope, settings)


@router.get(
    "/queues",
    response_model=list[QueueOut],
    tags=["queues"],
    description=f"Every queue with its counts and a health verdict: {HEALTH_RULE}.",
)
async def list_queues(request: Request, scope: Read) -> Any:
    corral = settings_of(request).corral
    workers = await corral.workers()
    return [_queue_row(q.name, q.counts, workers) for q in await corral.overview()]


async def _queue_out(queue: Any, workers: list[WorkerInfo]) -> dict[str, Any]:
    return _queue_row(queue.name, await queue.counts(), workers)


def _queue_row(name: str, counts: dict[str, int], workers: list[WorkerInfo]) -> dict[str, Any]:
    return judge(name, counts, workers).to_dict()


@router.get("/queues/{queue}", response_model=QueueOut, tags=["queues"])
async def get_queue(queue: QueueName, request: Request, scope: Read) -> Any:
    corral = settings_of(request).corral
    return await _queue_out(corral.queue(queue), await corral.workers())


@router.get("/queues/{queue}/jobs", response_model=JobPage | SearchOut, tags=["queues"])
async def list_jobs(
    queue: QueueName,
    request: Request,
    scope: Read,
    state: State = "waiting",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=2000, pattern=CURSOR, description="a next_cursor this API returned"),
    ] = None,
    task: Annotated[Text | None, Query(description="task name, or a pattern with * and ?")] = None,
    group: Annotated[Text | None, Query()] = None,
    error: Annotated[Text | None, Query(description="text in the last error")] = None,
    text: Annotated[Text | None, Query(description="text in the arguments or id")] = None,
    since: Annotated[Moment | None, Query(description="enqueued at or after")] = None,
    until: Annotated[Moment | None, Query(description="enqueued before")] = None,
    job_id: Annotated[Text | None, Query()] = None,
    scan: Annotated[int, Query(ge=1, le=100_000, description="most jobs a search reads")] = 5000,
) -> Any:
    """Jobs in one state, a page at a time: finished ones newest first, waiting in the
    order they will run, delayed by due time. With any filter it is a search: it reads
    at most ``scan`` jobs per call and says how far it got (``scanned``, ``exhausted``);
    search on with ``next_cursor``. Criteria combine; text matches ignore case."""
    settings = settings_of(request)
    handle = settings.corral.queue(queue)
    criteria: dict[str, Any] = {"task": task, "group": group, "error": error, "text": text}
    criteria |= {"since": since, "until": until, "job_id": job_id}
    if any(v is not None for v in criteria.values()):
        flt = JobFilter(state, **criteria)
        found = await handle.search(flt, cursor=cursor, limit=limit, scan=scan)
        return {
            "jobs": [job_out(j, scope, settings) for j in found.jobs],
            "next_cursor": found.next_cursor,
            "scanned": found.scanned,
            "bound": found.bound,
            "exhausted": found.exhausted,
        }
    if cursor is not None and cursor.isdigit() and len(cursor) <= 7:
        return await _offset_page(request, queue, state, int(cursor), limit, scope)
    page = await handle.page(state, cursor=cursor, limit=limit)
    return {
        "jobs": [job_out(j, scope, settings) for j in page.jobs],
        "next_cursor": page.next_cursor,
    }


async def _offset_page(
    request: Request, queue: str, state: str, offset: int, limit: int, scope: Scope
) -> dict[str, Any]:
    """A page after a cursor of the API's first versions (an offset, as digits)."""
    settings = settings_of(request)
    jobs = await settings.corral.queue(queue).jobs(state, offset=offset, limit=limit + 1)
    more = len(jobs) > limit and offset + limit <= _LAST_OFFSET
    return {
        "jobs": [job_out(j, scope, settings) for j in jobs[:limit]],
        "next_cursor": str(offset + limit) if more else None,
    }


@router.post(
    "/queues/{queue}/bulk",
    response_model=BulkOut,
    tags=["queues"],
    responses=problems(404),
)
async def bulk(queue: QueueName, body: BulkRequest, request: Request, scope: Write) -> Any:
    """Retry, cancel, remove or promote the jobs ``ids`` names (up to 10,000) or every job
    ``filter`` matches (any number: walked in steps). Jobs in a state the action does not
    apply to are skipped and counted. ``remove`` needs an admin key, as DELETE does."""
    if body.action == "remove" and scope < Scope.ADMIN:
        raise HTTPException(403, f"this key has {scope.name.lower()} scope; admin needed")
    flt = None
    if body.filter is not None:
        flt = JobFilter(**body.filter.model_dump())
    result = (
        await settings_of(request).corral.queue(queue).bulk(body.action, ids=body.ids, filter=flt)
    )
    detail = {
        "action": body.action,
        "by": "ids" if body.ids is not None else "filter",
        "matched": result.matched,
        "changed": result.changed,
    }
    await audited(request, "queue.bulk", queue, detail)
    return BulkOut(matched=result.matched, changed=result.changed, skipped=result.skipped)


@router.get("/queues/{queue}/history", response_model=HistoryOut, tags=["queues"])
async def history(
    queue: QueueName, request: Request, scope: Read, span: Literal["hour", "day"] = "hour"
) -> Any:
    """Jobs completed and failed for good, and the p95 run time: per minute over the last
    hour (60 points) or per fifteen minutes over the last day (96 points)."""
    return (await settings_of(request).corral.history(queue, span)).to_dict()


@router.get(
    "/queues/{queue}/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=JOB_ERRORS
)
async def get_job(queue: QueueName, job_id: JobId, request: Request, scope: Read) -> Any:
    """A job: state, progress, result, errors of every attempt, timestamps, logs."""
    settings = settings_of(request)
    return await _one_job(await settings.corral.get_job(job_id, queue), scope, settings)


async def _one_job(job: Job, scope: Scope, settings: Settings) -> dict[str, Any]:
    """A job as GET of one job shows it: with the children it spawned and its parent."""
    data = job_out(job, scope, settings)
    children, parent = await asyncio.gather(job.children(), job.parent())
    data["children"] = [
        {"name": name, "queue": c.queue, "id": c.id, "state": c.state.value, "task": c.name}
        for name, c in children.items()
    ]
    data["parent"] = None if parent is None else {"queue": parent.queue, "id": parent.id}
    return data


@router.get(
    "/queues/{queue}/jobs/{job_id}/result",
    response_model=JobOut,
    tags=["jobs"],
    responses={
        202: {"model": JobOut, "description": "still running when the wait ended"},
        **JOB_ERRORS,
    },
)
async def wait_result(
    queue: QueueName,
    job_id: JobId,
    request: Request,
    scope: Read,
    timeout: Annotated[float, Query(ge=0, le=60)] = 30,
) -> Any:
    """Long-poll: answers (200) as soon as the job finishes, or 202 after ``timeout``."""
    settings = settings_of(request)
    job = await settings.corral.get_job(job_id, queue)
    state = await job.wait(timeout)
    return JSONResponse(job_out(job, scope, settings), status_code=200 if state else 202)


@router.get(
    "/queues/{queue}/jobs/{job_id}/blockers",
    response_model=BlockersOut,
    tags=["jobs"],
    responses=JOB_ERRORS,
)
async def job_blockers(queue: QueueName, job_id: JobId, request: Request, scope: Read) -> Any:
    """Why the job has not started yet: delayed, queue paused, no live worker,
    concurrency or group cap, rate limit, jobs ahead of it in line."""
    job = await settings_of(request).corral.get_job(job_id, queue)
    found = await job.blockers()
    return {
        "id": job.id,
        "queue": job.queue,
        "state": job.state.value,
        "blockers": [
            {
                "kind": b.kind,
                "message": b.message,
                "until": None if b.until is None else b.until.isoformat(),
            }
            for b in found
        ],
    }


_PAST = {"retry": "retried", "promote": "promoted"}


async def _act(request: Request, queue: str, job_id: str, action: str, scope: Scope) -> Any:
    settings = settings_of(request)
    job = await settings.corral.get_job(job_id, queue)
    if action == "cancel":
        await job.cancel()
    elif not await getattr(job, action)():
        await job.refresh()  # the state that refused it, not the one read before
        raise InvalidTransition(f"job {job_id} is {job.state.value}; it cannot be {_PAST[action]}")
    await audited(request, f"job.{action}", f"{queue}/{job_id}")
    return job_out(await job.refresh(), scope, settings)


@router.post(
    "/queues/{queue}/jobs/{job_id}/cancel",
    response_model=JobOut,
    tags=["jobs"],
    responses=ACTION_ERRORS,
)
async def cancel_job(queue: QueueName, job_id: JobId, request: Request, scope: Write) -> Any:
    """Cancel: a waiting or delayed job ends cancelled; a running one is asked to stop."""
    return await _act(request, queue, job_id, "cancel", scope)


@router.post(
    "/queues/{queue}/jobs/{job_id}/retry",
    response_model=JobOut,
    tags=["jobs"],
    responses=ACTION_ERRORS,
)
async def retry_job(queue: QueueName, job_id: JobId, request: Request, scope: Write) -> Any:
    """Run a failed or cancelled job again with fresh attempts."""
    return await _act(request, queue, job_id, "retry", scope)


@router.post(
    "/queues/{queue}/jobs/{job_id}/promote",
    response_model=JobOut,
    tags=["jobs"],
    responses=ACTION_ERRORS,
)
async def promote_job(queue: QueueName, job_id: JobId, request: Request, scope: Write) -> Any:
    """Run a delayed job now."""
    return await _act(request, queue, job_id, "promote", scope)


@router.delete(
    "/queues/{queue}/jobs/{job_id}", status_code=204, tags=["jobs"], responses=ACTION_ERRORS
)
async def remove_job(queue: QueueName, job_id: JobId, request: Request, scope: Admin) -> None:
    """Delete a job (not while it runs: cancel it first)."""
    job = await settings_of(request).corral.get_job(job_id, queue)
    await job.remove()
    await audited(request, "job.remove", f"{queue}/{job_id}")


@router.post("/queues/{queue}/retry-failed", response_model=Count, tags=["queues"])
async def retry_failed(queue: QueueName, request: Request, scope: Admin) -> Any:
    """Put every failed job of the queue back to waiting."""
    count = await settings_of(request).corral.queue(queue).retry_all()
    await audited(request, "queue.retry_failed", queue, {"count": count})
    return {"count": count}


@router.post("/queues/{queue}/pause", response_model=QueueOut, tags=["queues"])
async def pause(queue: QueueName, request: Request, scope: Admin) -> Any:
    corral = settings_of(request).corral
    await corral.queue(queue).pause()
    await audited(request, "queue.pause", queue)
    return await _queue_out(corral.queue(queue), await corral.workers())


@router.post("/queues/{queue}/resume", response_model=QueueOut, tags=["queues"])
async def resume(queue: QueueName, request: Request, scope: Admin) -> Any:
    corral = settings_of(request).corral
    await corral.queue(queue).resume()
    await audited(request, "queue.resume", queue)
    return await _queue_out(corral.queue(queue), await corral.workers())


@router.post("/queues/{queue}/clean", response_model=Count, tags=["queues"])
async def clean(queue: QueueName, body: CleanRequest, request: Request, scope: Admin) -> Any:
    """Delete finished jobs older than ``older_than`` seconds."""
    q = settings_of(request).corral.queue(queue)
    count = await q.clean(body.state, older_than=body.older_than, limit=body.limit)
    detail = {"state": body.state, "older_than": body.older_than, "count": count}
    await audited(request, "queue.clean", queue, detail)
    return {"count": count}


@router.get("/workers", response_model=list[WorkerOut], tags=["workers"])
async def workers(request: Request, scope: Read) -> Any:
    """The live workers."""
    return [
        {name: getattr(w, name) for name in WorkerOut.model_fields}
        for w in await settings_of(request).corral.workers()
    ]
