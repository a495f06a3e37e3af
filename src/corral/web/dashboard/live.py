"""The dashboard's live feed: ``GET /live``, one Server-Sent Events stream per tab, all
fed by one :class:`LiveHub` per app (itself ONE consumer of ``Corral.events()``, so one
backend subscription whatever the number of tabs).

A tab asks for what it shows (``data-live`` on its ``<body>`` is the query string):

- ``counts`` (on unless ``counts=0``): the overview's rows as JSON,
  ``{"queues": [{"name", <state>: n, ..., "paused", "workers", "healthy", "reason"}]}``,
  sent when the tab connects and then at most once per ``interval`` and only when they
  changed. The hub reads them once for all tabs, after an event (or every ``refresh``
  seconds, for what emits no event: a pause, a worker leaving, a delayed job coming due).
- ``job=<queue>/<id>`` (repeatable, up to :data:`MAX_JOBS`): ``job`` events
  ``{"queue", "id", "event"}`` for each lifecycle event of that job, ``event`` being the
  lifecycle event's name, or ``resync`` when events may have been missed (the page
  should re-read the job either way).

Nothing here waits on a tab: a tab's counts are one slot (the newest wins) and its job
events a short deque (the oldest go, then a ``resync``); its socket is its own task's
business. A closed tab leaves the hub at once; the hub's subscription and tasks stop
with the last tab.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sse_starlette.sse import EventSourceResponse
from starlette.types import Receive, Scope, Send

from corral.app import Corral
from corral.errors import CorralError, InvalidName
from corral.feed import EventFeed, Subscription
from corral.policy import check_job_id, check_queue_name
from corral.web.api import _queue_row
from corral.web.dashboard.session import LoginRequired, viewer_of

__all__ = ["MAX_JOBS", "LiveHub", "Tab", "hub_of", "hub_of_app", "router"]

log = logging.getLogger("corral.web")

router = APIRouter(include_in_schema=False)

#: Jobs one tab may watch.
MAX_JOBS = 20
#: Job events a tab holds while its socket is busy (then: drop the oldest, resync).
TAB_JOB_EVENTS = 64
#: Seconds a stream may be unable to write before it is dropped.
SEND_TIMEOUT = 30
PING = 15
#: How soon a browser reconnects after the stream broke (a server restart), in ms.
RETRY_MS = 2000

JobKey = tuple[str, str]


class Tab:
    """One open ``/live`` stream: what it watches and what is waiting to be sent."""

    def __init__(self, counts: bool, jobs: frozenset[JobKey]) -> None:
        self.wants_counts = counts
        self.jobs = jobs
        self._counts: bytes | None = None
        self._jobs: deque[tuple[str, str, str]] = deque()
        self._ready = asyncio.Event()

    def put_counts(self, payload: bytes) -> None:
        self._counts = payload  # a newer snapshot replaces one not yet sent
        self._ready.set()

    def put_job(self, queue: str, job_id: str, event: str) -> None:
        item = (queue, job_id, event)
        if self._jobs and self._jobs[-1] == item:
            return  # the page re-reads the job on each: one of a run is enough
        if len(self._jobs) >= TAB_JOB_EVENTS:
            self._jobs.clear()
            self._jobs.extend((q, i, "resync") for q, i in sorted(self.jobs))
        else:
            self._jobs.append(item)
        self._ready.set()

    @property
    def pending(self) -> int:
        """Job events waiting to be sent."""
        return len(self._jobs)

    def peek(self) -> list[str]:
        """The event names waiting to be sent (for tests)."""
        return [event for _, _, event in self._jobs]

    async def next(self) -> list[dict[str, str]]:
        """The SSE events to send now (waits for at least one)."""
        await self._ready.wait()
        self._ready.clear()
        out: list[dict[str, str]] = []
        if self._counts is not None:
            out.append({"event": "counts", "data": self._counts.decode()})
            self._counts = None
        while self._jobs:
            queue, job_id, event = self._jobs.popleft()
            data = orjson.dumps({"queue": queue, "id": job_id, "event": event}).decode()
            out.append({"event": "job", "data": data})
        return out


class LiveHub:
    """The tabs of one app and the one event subscription that feeds them."""

    def __init__(self, corral: Corral, *, interval: float = 1.0, refresh: float = 15.0) -> None:
        self._corral = corral
        self.interval = interval
        self.refresh = refresh
        #: How soon a browser reconnects after its stream broke (a server restart), ms.
        self.retry_ms = RETRY_MS
        self.tabs: set[Tab] = set()
        self.watchers: dict[JobKey, set[Tab]] = {}
        self._subscription: Subscription | None = None
        #: The event feed the hub subscribed to (set on the first tab).
        self.feed: EventFeed | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._snapshot: bytes | None = None
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        #: Counts read from the store, for tests and the bench (one read serves all tabs).
        self.reads = 0

    @property
    def running(self) -> bool:
        """Whether the hub holds its subscription (while any tab is open). False only
        once the subscription is released: the hub's tasks are cleared last."""
        return bool(self._tasks)

    async def join(self, tab: Tab) -> None:
        """Add a tab (subscribing first if it is the only one). Raises CorralError when
        the backend cannot be reached; the tab is then not added."""
        self.tabs.add(tab)
        for key in tab.jobs:
            self.watchers.setdefault(key, set()).add(tab)
        try:
            async with self._lock:
                if not self._tasks:
                    await self._start()
        except BaseException:
            self.leave(tab)
            raise
        if tab.wants_counts:
            if self._snapshot is not None:
                tab.put_counts(self._snapshot)
            else:
                self._changed.set()

    def leave(self, tab: Tab) -> None:
        """Remove a tab at once (no await: this runs while its stream is cancelled); the
        last one out stops the hub in the background."""
        self.tabs.discard(tab)
        for key in tab.jobs:
            tabs = self.watchers.get(key)
            if tabs is not None:
                tabs.discard(tab)
                if not tabs:
                    del self.watchers[key]
        if not self.tabs and self._tasks:
            asyncio.get_running_loop().create_task(self._stop_if_idle())

    def poke(self) -> None:
        """Something changed that emits no event (a pause from the dashboard): read the
        counts again soon."""
        self._changed.set()

    async def _start(self) -> None:
        self.feed = self._corral.event_feed()
        self._subscription = await self.feed.subscribe(buffer=10_000)
        self._snapshot = None
        self._changed.set()
        self._tasks = [
            asyncio.create_task(self._relay(self._subscription), name="corral-live-events"),
            asyncio.create_task(self._counts(), name="corral-live-counts"),
        ]

    async def _stop_if_idle(self) -> None:
        async with self._lock:
            if not self.tabs:
                await self._stop()

    async def close(self) -> None:
        """Stop the tasks and leave the event feed (tabs still open get nothing more)."""
        async with self._lock:
            await self._stop()

    async def _stop(self) -> None:
        # Under the lock, so that no tab starts the hub again half-way. ``running``
        # turns false only after the subscription is released: whoever sees the hub
        # stopped may count on the feed being free.
        tasks = self._tasks
        try:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            subscription, self._subscription = self._subscription, None
            if subscription is not None:
                await subscription.aclose()
        finally:
            self._tasks = []
            self._snapshot = None

    async def _relay(self, subscription: Subscription) -> None:
        """Events in: job events to the tabs watching, and "counts may have changed"."""
        dropped = 0
        while not subscription.closed:
            await subscription.wait()
            events = subscription.drain()
            if events:
                self._changed.set()
            for event in events:
                for tab in self.watchers.get((event.queue, event.job_id), ()):
                    tab.put_job(event.queue, event.job_id, event.name)
            if subscription.dropped != dropped:
                dropped = subscription.dropped
                self._changed.set()
                for (queue, job_id), tabs in self.watchers.items():
                    for tab in tabs:
                        tab.put_job(queue, job_id, "resync")

    async def _counts(self) -> None:
        """Counts out: at most once per ``interval``, only when they changed."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.refresh):
                    await self._changed.wait()
            self._changed.clear()
            started = loop.time()
            if any(tab.wants_counts for tab in self.tabs):
                await self._publish_counts()
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    async def _publish_counts(self) -> None:
        try:
            workers = await self._corral.workers()
            rows = [_queue_row(q.name, q.counts, workers) for q in await self._corral.overview()]
        except CorralError as exc:
            log.warning("live counts: reading the queues failed: %s", exc)
            self._changed.set()  # try again after the interval
            return
        self.reads += 1
        payload = orjson.dumps({"queues": rows})
        if payload == self._snapshot:
            return
        self._snapshot = payload
        for tab in list(self.tabs):
            if tab.wants_counts:
                tab.put_counts(payload)


def hub_of_app(app: Any) -> LiveHub:
    """The live hub of a dashboard app."""
    hub: LiveHub = app.state.corral_live
    return hub


def hub_of(request: Request) -> LiveHub:
    """The live hub of the request's app."""
    return hub_of_app(request.app)


def _parse_jobs(values: list[str]) -> frozenset[JobKey]:
    if len(values) > MAX_JOBS:
        raise InvalidName(f"job: at most {MAX_JOBS} jobs per stream, got {len(values)}")
    jobs = set()
    for value in values:
        queue, slash, job_id = value.partition("/")
        if not slash:
            raise InvalidName(f"job: expected <queue>/<id>, got {value!r}")
        jobs.add((check_queue_name(queue), check_job_id(job_id)))
    return frozenset(jobs)


@router.get("/live")
async def live(
    request: Request,
    job: Annotated[list[str] | None, Query()] = None,
    counts: bool = True,
) -> Response:
    """The tab's live stream (see the module docstring). Answers 401 rather than the
    login page: an EventSource cannot follow a redirect to a form."""
    try:
        viewer_of(request)
    except LoginRequired:
        return PlainTextResponse("log in first: your session has ended", status_code=401)
    try:
        tab = Tab(counts, _parse_jobs(job or []))
    except InvalidName as exc:
        return PlainTextResponse(str(exc), status_code=422)
    hub = hub_of(request)

    async def stream() -> Any:
        yield {"retry": hub.retry_ms, "comment": "live"}
        while True:
            for event in await tab.next():
                yield event

    return _TabStream(
        hub,
        tab,
        stream(),
        ping=PING,
        send_timeout=SEND_TIMEOUT,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class _TabStream(EventSourceResponse):
    """The stream of one tab. It joins the hub when the response starts and leaves it
    however the response ends: also when its generator never started (a HEAD request,
    a client gone before the first byte). Joining here rather than in the endpoint
    leaves no gap (the endpoint returned, the response not yet called) in which a
    cancelled request would keep its tab in the hub for ever."""

    def __init__(self, hub: LiveHub, tab: Tab, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hub = hub
        self._tab = tab

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            # A backend that cannot be reached raises before anything is sent: the
            # app's handler answers 503.
            await self._hub.join(self._tab)
            await super().__call__(scope, receive, send)
        finally:
            self._hub.leave(self._tab)
