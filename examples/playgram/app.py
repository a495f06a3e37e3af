"""Playgram's web app (FastAPI): the routes that enqueue jobs, wait for them, add
them in bulk, report queue health and work the dead-letter set.

``uvicorn examples.playgram.app:app`` serves it (``python -m examples.playgram`` runs
it with its worker). Corral's dashboard and HTTP API are mounted at ``/corral``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from corral import (
    Backoff,
    Call,
    Corral,
    Job,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobState,
    ResultTimeout,
    ValidationError,
)
from corral.contrib.fastapi import CorralDep, corral_lifespan, mount
from examples.playgram import tasks
from examples.playgram.tasks import QUEUES

Queue = Literal["webhooks", "manychat", "email", "analytics", "export"]

#: ``?wait=`` seconds: how long a request may wait for its job (pattern 2).
Wait = Annotated[float | None, Query(gt=0, le=30, description="wait up to this many seconds")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- the seed's job data, field for field ------------------------------------------------


class WebhookData(Model):
    webhookId: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@=+-]{0,199}$")  # a job id
    event: str = Field(min_length=1, max_length=200)
    url: str = Field(pattern=r"^https?://", max_length=2000)
    payload: Any = None
    headers: dict[str, str] | None = None

    def call(self, options: dict[str, Any]) -> Call:
        # webhookId is also the job id: adding the same webhook twice returns the job
        # already queued instead of delivering it twice (and the receiver dedupes on it).
        return tasks.deliver_webhook.options(job_id=self.webhookId, **options).call(
            self.webhookId, self.event, self.url, self.payload, self.headers
        )


class ManyChatData(Model):
    type: Literal["contact", "tag", "field"]
    action: Literal["create", "update", "delete"]
    toolId: str = Field(min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)

    def call(self, options: dict[str, Any]) -> Call:
        task = tasks.sync_manychat.options(**options)
        return task.call(self.type, self.action, self.toolId, self.data)


class EmailData(Model):
    to: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)
    subject: str = Field(min_length=1, max_length=500)
    template: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)

    def call(self, options: dict[str, Any]) -> Call:
        task = tasks.send_email.options(**options)
        return task.call(self.to, self.subject, self.template, self.data)


class AnalyticsData(Model):
    qrCodeId: str = Field(min_length=1, max_length=200)
    event: Literal["scan", "validation"]
    data: dict[str, Any] = Field(default_factory=dict)

    def call(self, options: dict[str, Any]) -> Call:
        return tasks.record_qr_event.options(**options).call(self.qrCodeId, self.event, self.data)


class ExportData(Model):
    userId: str = Field(pattern=r"^[A-Za-z0-9_-]{1,100}$")
    exportType: Literal["csv", "json"]
    dataType: Literal["contacts", "qr_scans"]
    filters: dict[str, str] | None = None

    def call(self, options: dict[str, Any]) -> Call:
        task = tasks.export_data.options(**options)
        return task.call(self.userId, self.exportType, self.dataType, self.filters)


# -- Bull's job options, in Bull's units ------------------------------------------------------


class BackoffOptions(Model):
    type: Literal["exponential", "fixed"]
    delay: int = Field(ge=0, le=3_600_000, description="milliseconds")


class JobOptions(Model):
    priority: int | None = Field(default=None, ge=1, le=100, description="1 runs first, as in Bull")
    attempts: int | None = Field(default=None, ge=1, le=25)
    backoff: BackoffOptions | None = None
    delay: int | None = Field(default=None, ge=0, le=30 * 86_400_000, description="milliseconds")

    def corral(self) -> dict[str, Any]:
        """The same options as Corral takes them."""
        options: dict[str, Any] = {}
        if self.priority is not None:
            options["priority"] = 100 - self.priority  # Corral: higher runs first
        if self.attempts is not None:
            options["attempts"] = self.attempts
        if self.backoff is not None:
            options["backoff"] = Backoff(self.backoff.type, base=self.backoff.delay / 1000)
        if self.delay:
            options["delay"] = self.delay / 1000
        return options


class WebhookJob(Model):
    queue: Literal["webhooks"] = "webhooks"
    data: WebhookData
    options: JobOptions = JobOptions()


class ManyChatJob(Model):
    queue: Literal["manychat"] = "manychat"
    data: ManyChatData
    options: JobOptions = JobOptions()


class EmailJob(Model):
    queue: Literal["email"] = "email"
    data: EmailData
    options: JobOptions = JobOptions()


class AnalyticsJob(Model):
    queue: Literal["analytics"] = "analytics"
    data: AnalyticsData
    options: JobOptions = JobOptions()


class ExportJob(Model):
    queue: Literal["export"] = "export"
    data: ExportData
    options: JobOptions = JobOptions()


AnyJob = Annotated[
    WebhookJob | ManyChatJob | EmailJob | AnalyticsJob | ExportJob, Field(discriminator="queue")
]


class BulkRequest(Model):
    jobs: list[AnyJob] = Field(min_length=1, max_length=1000)


class ScanRequest(Model):
    userId: str = Field(min_length=1, max_length=200)


# -- the app ---------------------------------------------------------------------------

app = FastAPI(title="Playgram", lifespan=corral_lifespan(tasks.app))
mount(app, tasks.app, "/corral")  # dashboard at /corral/, API at /corral/api/v1


@app.exception_handler(ValidationError)
async def _bad_input(request: Request, exc: ValidationError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=422)


def _brief(job: Job) -> dict[str, Any]:
    return {"jobId": job.id, "queue": job.queue, "state": job.state.value}


def _status_url(job: Job) -> str:
    return f"/api/jobs/{job.queue}/{job.id}"


async def _add(job: Job, wait: float | None) -> Any:
    """Pattern 1 (no ``wait``): answer at once with the job id. Pattern 2: wait up to
    ``wait`` seconds for the outcome; past that, 202 with where to look later (the job
    goes on: a 504 would invite the client to send it again)."""
    if wait is None:
        return JSONResponse({**_brief(job), "statusUrl": _status_url(job)}, status_code=202)
    try:
        result = await job.result(timeout=wait)
    except ResultTimeout:
        await job.refresh()
        body = {**_brief(job), "statusUrl": _status_url(job), "timedOut": True}
        return JSONResponse(body, status_code=202)
    except JobFailed as exc:
        body = {**_brief(await job.refresh()), "error": str(exc)}
        return JSONResponse(body, status_code=502)
    except JobCancelled:
        return JSONResponse(_brief(await job.refresh()), status_code=409)
    return JSONResponse({**_brief(job), "result": result})


@app.post("/api/jobs/webhooks", status_code=202)
async def add_webhook_job(body: WebhookJob, jobs: CorralDep, wait: Wait = None) -> Any:
    [job] = await jobs.enqueue_many([body.data.call(body.options.corral())])
    return await _add(job, wait)


@app.post("/api/jobs/manychat", status_code=202)
async def add_manychat_sync_job(body: ManyChatJob, jobs: CorralDep, wait: Wait = None) -> Any:
    [job] = await jobs.enqueue_many([body.data.call(body.options.corral())])
    return await _add(job, wait)


@app.post("/api/jobs/email", status_code=202)
async def add_email_job(body: EmailJob, jobs: CorralDep, wait: Wait = None) -> Any:
    [job] = await jobs.enqueue_many([body.data.call(body.options.corral())])
    return await _add(job, wait)


@app.post("/api/jobs/analytics", status_code=202)
async def add_qr_analytics_job(body: AnalyticsJob, jobs: CorralDep, wait: Wait = None) -> Any:
    [job] = await jobs.enqueue_many([body.data.call(body.options.corral())])
    return await _add(job, wait)


@app.post("/api/jobs/export", status_code=202)
async def add_data_export_job(body: ExportJob, jobs: CorralDep, wait: Wait = None) -> Any:
    [job] = await jobs.enqueue_many([body.data.call(body.options.corral())])
    return await _add(job, wait)


@app.post("/api/jobs/bulk", status_code=202)
async def add_bulk(body: BulkRequest, jobs: CorralDep) -> dict[str, Any]:
    """Pattern 3: many jobs of any queues in one call (a few round trips, one per
    queue); one invalid job and none is added."""
    added = await jobs.enqueue_many([j.data.call(j.options.corral()) for j in body.jobs])
    return {"count": len(added), "jobIds": [j.id for j in added]}


@app.post("/api/qr/{qr_code}/scan")
async def scan_qr(qr_code: str, body: ScanRequest, jobs: CorralDep) -> dict[str, Any]:
    """The seed's example route: do the business, queue the side effects, answer at
    once. The scan goes to ManyChat as a signed webhook and into the analytics."""
    calls = [tasks.record_qr_event.call(qr_code, "scan", {"userId": body.userId})]
    hook_url = os.environ.get("PLAYGRAM_MANYCHAT_WEBHOOK_URL")
    if hook_url:
        webhook = WebhookData(
            webhookId=f"scan_{uuid.uuid4().hex}",
            event="qr.scanned",
            url=hook_url,
            payload={"qrCode": qr_code, "userId": body.userId},
        )
        calls.append(webhook.call({"priority": 99}))  # Bull's priority 1
    await jobs.enqueue_many(calls)
    return {"success": True}


@app.get("/api/jobs/{queue}/{job_id}")
async def job_status(queue: Queue, job_id: str, jobs: CorralDep) -> dict[str, Any]:
    job = await _job(queue, job_id, jobs)
    return {
        **_brief(job),
        "name": job.name,
        "attempts": job.attempts,
        "priority": job.priority,
        "runAt": job.run_at.isoformat() if job.run_at else None,
        "progress": job.progress,
        "result": job.return_value,
        "error": job.error,
    }


async def _job(queue: str, job_id: str, jobs: Corral) -> Job:
    try:
        return await jobs.get_job(job_id, queue)
    except (JobNotFound, ValidationError):
        raise HTTPException(404, f"no job {job_id!r} in queue {queue!r}") from None


@app.get("/api/queues/health")
async def queue_health(jobs: CorralDep) -> list[dict[str, Any]]:
    """getQueueHealth(): each of the five queues' counts and verdict, in one call
    (unhealthy: paused with jobs waiting, or jobs waiting and no live worker)."""
    rows = {h.name: h for h in await jobs.health()}
    fields = ("waiting", "active", "completed", "failed", "delayed")
    health = []
    for name in QUEUES:
        row = rows.get(name)  # a queue never used and served by no worker is not listed
        health.append(
            {
                "name": name,
                **{f: getattr(row, f) if row else 0 for f in fields},
                "healthy": row.healthy if row else True,
                "reason": row.reason if row else "ok",
                "workers": row.workers if row else 0,
            }
        )
    return health


# -- the dead-letter set: jobs that failed for good ---------------------------------------------


@app.get("/api/queues/{queue}/failed")
async def failed_jobs(
    queue: Queue, jobs: CorralDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    page = await jobs.queue(queue).page("failed", limit=limit)
    return [
        {
            "jobId": j.id,
            "name": j.name,
            "args": j.args,
            "attempts": j.attempts,
            "error": {k: v for k, v in (j.error or {}).items() if k in ("type", "message")},
            "failedAt": j.finished_at.isoformat() if j.finished_at else None,
        }
        for j in page.jobs
    ]


@app.post("/api/queues/{queue}/failed/retry")
async def retry_all_failed(queue: Queue, jobs: CorralDep) -> dict[str, int]:
    return {"retried": await jobs.queue(queue).retry_all()}


@app.post("/api/queues/{queue}/failed/{job_id}/retry")
async def retry_failed(queue: Queue, job_id: str, jobs: CorralDep) -> dict[str, Any]:
    job = await _job(queue, job_id, jobs)
    if job.state is not JobState.FAILED:
        raise HTTPException(409, f"job {job_id} is {job.state.value}, not failed")
    await job.retry()
    return _brief(await job.refresh())


# -- exports -------------------------------------------------------------------------


@app.get("/api/exports/{job_id}/download")
async def download_export(job_id: str, jobs: CorralDep) -> FileResponse:
    job = await _job("export", job_id, jobs)
    if job.state is not JobState.COMPLETED:
        raise HTTPException(409, f"export {job_id} is {job.state.value}")
    path = Path(job.return_value["path"])
    if not path.is_file():
        raise HTTPException(410, f"export {job_id}'s file is gone")
    return FileResponse(path, filename=path.name)
