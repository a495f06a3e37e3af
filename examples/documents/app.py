"""The documents example's web app (FastAPI): uploads, job status, retry, reprocess
and removal, with Corral's dashboard and API at ``/admin/queues`` (bull-board's place).

Uploads are streamed to disk: Starlette's multipart parser spools each file part to a
temporary file (in memory only up to 1 MiB), and this app copies it in 1 MiB blocks
into ``UPLOAD_DIR/<job id>/``, stopping at ``MAX_UPLOAD_BYTES`` (50 MB). A job carries
the path and the options, never the bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from corral import ConfigurationError, InvalidTransition, Job, JobNotFound, ValidationError
from corral.contrib.fastapi import CorralDep, corral_lifespan, mount
from examples.documents.tasks import PRIORITY, QUEUE, process_document, upload_dir
from examples.documents.tasks import app as corral

COPY_BLOCK = 1 << 20
log = logging.getLogger("examples.documents")
MB = 1_000_000
UPLOAD_PATH = "/api/documents/async-upload"


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"{name} must be a whole number >= 1, got {raw!r}")
    return int(raw)


def max_upload_bytes() -> int:
    """Per file (``MAX_UPLOAD_BYTES``, default 50 MB)."""
    return _count("MAX_UPLOAD_BYTES", 50 * MB)


def max_files() -> int:
    """Per upload (``MAX_UPLOAD_FILES``, default 10)."""
    return _count("MAX_UPLOAD_FILES", 10)


@contextlib.asynccontextmanager
async def removed_uploads(_: FastAPI) -> AsyncIterator[None]:
    """While the app runs, delete the upload of each job removed anywhere (this API,
    the dashboard, ``corral remove``) as soon as the removal is announced. Events are
    not durable, and retention or ``clean`` announce nothing: the sweep schedule
    (``documents.sweep_uploads``) catches whatever this misses."""
    max_upload_bytes(), max_files()  # a bad setting fails the startup, naming it
    events = await corral.events(queues=[QUEUE])

    async def watch() -> None:
        try:
            async for event in events:
                if event.name == "removed" and re.fullmatch(r"[0-9a-f]{32}", event.job_id):
                    await asyncio.to_thread(shutil.rmtree, job_folder(event.job_id), True)
        except Exception as exc:  # the sweep still runs
            log.warning("upload cleanup on removal stopped: %s", exc)

    watching = asyncio.create_task(watch())
    try:
        yield
    finally:
        watching.cancel()
        with contextlib.suppress(BaseException):
            await watching
        await events.aclose()


api = FastAPI(title="Document processing", lifespan=corral_lifespan(corral, inner=removed_uploads))
mount(api, corral, "/admin/queues")


class EarlyLimit:
    """Refuse an upload whose declared size is over what its files may add up to
    before a byte of it is read: without this, the parser would spool it all to a
    temporary file first. (A chunked upload declares no size; the per-file copy
    still stops it.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == UPLOAD_PATH:
            declared = dict(scope["headers"]).get(b"content-length", b"0")
            cap = max_files() * (max_upload_bytes() + 64 * 1024)  # plus part headers
            if declared.isdigit() and int(declared) > cap:
                message = f"the upload declares {int(declared):,} bytes, over {cap:,}"
                refusal = JSONResponse({"success": False, "error": message}, status_code=413)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


api.add_middleware(EarlyLimit)


class Refused(Exception):
    """An upload this app will not take, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@api.exception_handler(Refused)
async def refused(_: Any, exc: Refused) -> JSONResponse:
    return JSONResponse({"success": False, "error": str(exc)}, status_code=exc.status)


@api.exception_handler(JobNotFound)
async def not_found(_: Any, exc: JobNotFound) -> JSONResponse:
    return JSONResponse({"success": False, "error": str(exc)}, status_code=404)


@api.exception_handler(ValidationError)
async def bad_input(_: Any, exc: ValidationError) -> JSONResponse:
    return JSONResponse({"success": False, "error": str(exc)}, status_code=422)


def safe_name(filename: str | None) -> str:
    """The file's own name, without directories or characters a shell would mind."""
    name = re.sub(r"[^A-Za-z0-9._ -]", "_", Path(filename or "").name).strip(" .")
    return name[:200] or "document"


def job_folder(job_id: str) -> Path:
    """The upload directory of a job (ids are this app's uuid4 hex: never a path)."""
    if not re.fullmatch(r"[0-9a-f]{32}", job_id):
        raise Refused(404, f"no job {job_id!r}")
    return upload_dir() / job_id


def copy_limited(source: IO[bytes], dest: Path, limit: int, label: str) -> int:
    """Copy block by block; over ``limit`` the partial file is deleted and the upload
    refused. Runs in a thread: disk writes never block the event loop."""
    size = 0
    try:
        with dest.open("xb") as out:
            while block := source.read(COPY_BLOCK):
                size += len(block)
                if size > limit:
                    raise Refused(413, f"{label} is larger than the {limit:,} byte limit")
                out.write(block)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return size


async def queue_status(corral_app: Any) -> dict[str, int]:
    counts = await corral_app.queue(QUEUE).counts()
    return {k: counts.get(k, 0) for k in ("waiting", "active", "completed", "failed", "delayed")}


@api.post(UPLOAD_PATH, status_code=202)
async def async_upload(
    jobs: CorralDep,
    files: Annotated[list[UploadFile], File(description="one or more documents")],
    useAI: Annotated[bool, Form()] = False,
    generateSummary: Annotated[bool, Form()] = False,
    generateEmbeddings: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Store each file under its job's directory, then enqueue one job per file. A
    file over the limit refuses the whole request (413) and leaves nothing behind."""
    limit = max_upload_bytes()
    if len(files) > max_files():
        raise Refused(413, f"{len(files)} files: at most {max_files()} per upload")
    stored: list[tuple[str, Path, str, int]] = []  # job id, path, filename, size
    try:
        for upload in files:
            name = safe_name(upload.filename)
            if upload.size is not None and upload.size > limit:  # known from the parser
                raise Refused(413, f"{name} is larger than the {limit:,} byte limit")
            job_id = uuid.uuid4().hex
            path = job_folder(job_id) / name
            stored.append((job_id, path, name, 0))
            path.parent.mkdir(parents=True)
            size = await run_in_threadpool(copy_limited, upload.file, path, limit, name)
            stored[-1] = (job_id, path, name, size)
    except BaseException:
        for job_id, *_ in stored:
            shutil.rmtree(job_folder(job_id), ignore_errors=True)
        raise
    kind = "ai" if useAI else "regular"
    queued: list[dict[str, Any]] = []
    for job_id, path, name, size in stored:
        options = {
            "documentId": f"doc_{job_id[:12]}",
            "filename": name,
            "useAI": useAI,
            "generateSummary": generateSummary,
            "generateEmbeddings": generateEmbeddings,
        }
        task = process_document.options(job_id=job_id, priority=PRIORITY[kind])
        try:
            await task.enqueue(str(path), options)
        except BaseException:  # the store is down: drop the files no job will read
            for later, *_ in stored[len(queued) :]:
                shutil.rmtree(job_folder(later), ignore_errors=True)
            raise
        queued.append({"jobId": job_id, "filename": name, "size": size, "priority": kind})
    return {
        "success": True,
        "message": f"{len(queued)} documents queued for processing",
        "jobs": queued,
        "queueStatus": await queue_status(jobs),
    }


def _ms(job: Job, field: str) -> int | None:
    value = getattr(job, field)
    return None if value is None else int(value.timestamp() * 1000)


def job_out(job: Job) -> dict[str, Any]:
    progress = job.progress if isinstance(job.progress, dict) else {}
    options = job.args[1] if len(job.args) > 1 and isinstance(job.args[1], dict) else {}
    return {
        "id": job.id,
        "state": job.state.value,
        "filename": options.get("filename"),
        "progress": progress.get("percent", 0),
        "stage": progress.get("stage"),
        "result": job.return_value,
        "error": (job.error or {}).get("message"),
        "attempts": job.attempts,
        "stages": [line.removeprefix("stage ") for line in job.logs if line.startswith("stage ")],
        "createdAt": _ms(job, "created_at"),
        "processedAt": _ms(job, "started_at"),
        "finishedAt": _ms(job, "finished_at"),
    }


@api.get("/api/documents/async-upload", response_model=None)
async def status(jobs: CorralDep, jobId: str | None = None) -> dict[str, Any]:
    """One job (``?jobId=``), or the queue's counts."""
    if jobId is None:
        return await queue_status(jobs)
    return job_out(await jobs.get_job(jobId, QUEUE))


@api.get("/api/documents/failed")
async def failed(jobs: CorralDep) -> list[dict[str, Any]]:
    """The failed documents (they stay until retried or removed)."""
    return [job_out(job) for job in await jobs.queue(QUEUE).jobs("failed", limit=100)]


@api.post("/api/documents/async-upload/{job_id}/retry")
async def retry(job_id: str, jobs: CorralDep) -> dict[str, Any]:
    """Run a failed document again, with fresh attempts."""
    job = await jobs.get_job(job_id, QUEUE)
    if not await job.retry():
        raise Refused(409, f"job {job_id} is {job.state.value}: only failed jobs can be retried")
    return {"success": True, "jobId": job_id}


@api.post("/api/documents/async-upload/{job_id}/reprocess", status_code=202)
async def reprocess(job_id: str, jobs: CorralDep) -> dict[str, Any]:
    """Process a document again at the lowest priority, as a new job with its own
    (hard-linked: no copy) file, so removing either job leaves the other's file."""
    source = await jobs.get_job(job_id, QUEUE)
    path, options = Path(source.args[0]), dict(source.args[1])
    if not path.is_file():
        raise Refused(409, f"the upload of job {job_id} is gone")
    new_id = uuid.uuid4().hex
    folder = job_folder(new_id)
    folder.mkdir(parents=True)
    copy = folder / path.name
    try:
        os.link(path, copy)
    except OSError:  # another file system: copy instead
        await run_in_threadpool(shutil.copyfile, path, copy)
    options["reprocess"] = True
    task = process_document.options(job_id=new_id, priority=PRIORITY["reprocess"])
    await task.enqueue(str(copy), options)
    return {"success": True, "jobId": new_id, "documentId": options["documentId"]}


@api.delete("/api/documents/async-upload/{job_id}")
async def remove(job_id: str, jobs: CorralDep) -> dict[str, Any]:
    """Remove the job and its upload. Jobs removed any other way (dashboard, CLI,
    retention) lose their upload at the next sweep (``documents.sweep_uploads``)."""
    folder = job_folder(job_id)
    try:
        job: Job | None = await jobs.get_job(job_id, QUEUE)
    except JobNotFound:
        job = None
    if job is not None:
        try:
            await job.remove()
        except InvalidTransition as exc:
            raise Refused(409, str(exc)) from None
    had_file = folder.is_dir()
    shutil.rmtree(folder, ignore_errors=True)
    if job is None and not had_file:
        raise Refused(404, f"no job {job_id!r}")
    return {"success": True, "jobId": job_id, "removed": True}
