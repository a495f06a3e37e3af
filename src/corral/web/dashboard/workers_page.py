"""The workers page: each live worker (where it runs, what it serves, how busy it is,
the jobs in its hands), refreshed every few seconds; without workers, the command that
starts one for this app."""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from corral import __version__
from corral.app import Corral
from corral.backends.base import WorkerInfo
from corral.backends.sqlite.store import path_from_url
from corral.errors import ConfigurationError
from corral.settings import mask_url
from corral.web.dashboard.render import render
from corral.web.dashboard.session import Viewer, viewer_of
from corral.web.deps import settings_of

__all__ = ["app_spec", "router", "start_command"]

router = APIRouter(include_in_schema=False)

Page = Annotated[Viewer, Depends(viewer_of)]

#: Jobs in hand listed per worker before "and N more".
JOBS_SHOWN = 12
#: Seconds between refreshes of the list.
REFRESH_SECONDS = 5


def app_spec(corral: Corral) -> str | None:
    """``module:attribute`` of an imported module holding this very app (what
    ``corral worker`` imports), or None when no module does (an app built in a function)."""
    found = []
    for name, module in list(sys.modules.items()):
        if name == "__main__" or module is None:
            continue
        try:
            attributes = list(vars(module).items())
        except TypeError:
            continue
        found += [f"{name}:{attr}" for attr, value in attributes if value is corral]
    # The shortest path is usually where the app is defined, not a module importing it.
    return min(found, key=lambda spec: (len(spec), spec), default=None)


def start_command(corral: Corral) -> tuple[str, bool]:
    """The shell command that starts a worker for this app on this backend, and whether
    it is complete (False: the app's module or the URL's password must be filled in).
    A relative SQLite path is made absolute: the worker may start in another directory."""
    spec = app_spec(corral)
    url = corral.url
    shared = True
    if urlsplit(url).scheme == "sqlite":
        try:
            path = path_from_url(url)
        except ConfigurationError:
            path = ":memory:"
        shared = path != ":memory:"  # another process cannot open this one's memory
        if shared:
            url = "sqlite:///" + str(Path(path).resolve())
    shown = mask_url(url)
    command = f"corral worker {spec or 'MODULE:APP'} --url {shlex.quote(shown)}"
    return command, spec is not None and shown == url and shared


def _ago(ms: int, now: datetime) -> str:
    seconds = max(now.timestamp() - ms / 1000, 0)
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400 * 2:
        return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min ago"
    return f"{seconds // 86400:.0f} days ago"


def _row(worker: WorkerInfo, now: datetime) -> dict[str, Any]:
    return {
        "id": worker.id,
        "host": worker.host,
        "pid": worker.pid,
        "queues": worker.queues,
        "concurrency": worker.concurrency,
        "active": worker.active,
        "busy": min(worker.active, worker.concurrency),
        "processed": worker.processed,
        "failed": worker.failed,
        "stuck": worker.stuck,
        "children": worker.children,
        "started": datetime.fromtimestamp(worker.started_at / 1000, UTC),
        "started_ago": _ago(worker.started_at, now),
        "seen": datetime.fromtimestamp(worker.last_seen / 1000, UTC),
        "seen_ago": _ago(worker.last_seen, now),
        "jobs": worker.jobs[:JOBS_SHOWN],
        "more_jobs": max(len(worker.jobs) - JOBS_SHOWN, 0),
        "version": worker.version,
    }


@router.get("/workers")
async def workers(request: Request, viewer: Page) -> Response:
    corral = settings_of(request).corral
    now = datetime.now(UTC)
    found = sorted(await corral.workers(), key=lambda w: (w.host, w.pid, w.id))
    command, complete = start_command(corral)
    return render(
        request,
        "workers.html",
        active="workers",
        rows=[_row(w, now) for w in found],
        command=command,
        command_complete=complete,
        server_version=__version__,
        refresh=REFRESH_SECONDS,
    )
