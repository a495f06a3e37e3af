"""The web app: connect a POS (enqueue the sync, answer at once), follow the sync
(JSON, and a live progress page over Server-Sent Events), the restaurant's dashboard,
and Corral's own dashboard and API under ``/corral`` for the team.

    uvicorn examples.pos_sync.app:api --port 8000   # python -m examples.pos_sync runs it all
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field

from corral import Job
from corral.contrib.fastapi import CorralDep, corral_lifespan, job_events, mount
from corral.errors import JobNotFound
from examples.pos_sync.tasks import app as corral
from examples.pos_sync.tasks import order_count, ready_email, sync_orders

STATIC = Path(__file__).parent / "static"
#: No inline script or style, nothing from another origin: the pages' JS and CSS are
#: files of this app, and EventSource connects back to it.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

api = FastAPI(title="POS sync", lifespan=corral_lifespan(corral))
# Corral's dashboard and API for the team (the emails' "Sync details" link). Without
# CORRAL_API_KEYS it answers loopback clients only.
mount(api, corral, "/corral")


@api.middleware("http")
async def security_headers(request: Any, call_next: Any) -> Response:
    response: Response = await call_next(request)
    if not request.url.path.startswith("/corral"):  # the dashboard sets its own
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


class ConnectPOS(BaseModel):
    posType: str = Field(default="toast", pattern="^(toast|square|clover)$")
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)


#: Corral's job states as the seed's frontend knew them.
STATUS = {
    "waiting": "queued",
    "delayed": "queued",
    "active": "processing",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}


def sync_view(job: Job) -> dict[str, Any]:
    """What the restaurant's owner sees of their sync (never its arguments or errors)."""
    status = STATUS[job.state.value]
    if job.state.value == "delayed" and job.progress:
        status = "processing"  # under way, waiting out the POS's Retry-After
    view: dict[str, Any] = {"status": status, "progress": job.progress}
    if job.state.value == "completed":
        view["result"] = job.return_value
    return view


@api.post("/api/restaurants/{restaurant_id}/connect-pos", status_code=202)
async def connect_pos(restaurant_id: str, body: ConnectPOS) -> dict[str, str]:
    """Enqueue the sync and answer at once. Clicking twice while a sync runs gives the
    same job (dedupe_key), not a second sync."""
    job = await sync_orders.options(
        notify=[ready_email(body.email)], dedupe_key=f"pos-sync:{restaurant_id}"
    ).enqueue(restaurant_id, body.posType)
    return {
        "jobId": job.id,
        "message": "We're syncing your data! Check your email in a few minutes.",
        "statusUrl": f"/api/sync-jobs/{job.id}",
        "progressPage": f"/sync/{job.id}",
    }


async def _job(jobs: Any, job_id: str) -> Job:
    try:
        job: Job = await jobs.get_job(job_id, "sync")
    except JobNotFound:
        raise HTTPException(404, f"no sync job {job_id}") from None
    return job


@api.get("/api/sync-jobs/{job_id}")
async def sync_status(job_id: str, jobs: CorralDep) -> dict[str, Any]:
    """``{status, progress}`` (and ``result`` once completed)."""
    return sync_view(await _job(jobs, job_id))


@api.get("/api/sync-jobs/{job_id}/events")
async def sync_events(job_id: str, jobs: CorralDep) -> Response:
    """Live: ``state``, ``progress`` on every page, ``end``; then it closes."""
    try:
        return await job_events(jobs, job_id, "sync", view=sync_view)
    except JobNotFound:
        raise HTTPException(404, f"no sync job {job_id}") from None


@api.get("/", response_class=HTMLResponse)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@api.get("/sync/{job_id}", response_class=HTMLResponse)
async def sync_page(job_id: str, jobs: CorralDep) -> FileResponse:
    await _job(jobs, job_id)  # 404 for an unknown job; the page's JS reads its id
    return FileResponse(STATIC / "sync.html")


@api.get("/static/{name}")
async def static(name: str) -> FileResponse:
    if name not in {"app.css", "connect.js", "sync.js"}:
        raise HTTPException(404, "no such file")
    return FileResponse(STATIC / name)


@api.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    return Response(status_code=204)  # none: spares the browser a 404


@api.get("/dashboard/{restaurant_id}", response_class=HTMLResponse)
async def dashboard(restaurant_id: str) -> str:
    count = order_count(restaurant_id)
    name = html.escape(restaurant_id)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{name}: dashboard</title><link rel="stylesheet" href="/static/app.css">'
        f'</head><body><main><h1>{name}</h1><p class="big">{count:,} orders</p>'
        "</main></body></html>"
    )
