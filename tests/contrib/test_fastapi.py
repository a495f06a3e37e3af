"""corral.contrib.fastapi against a real FastAPI app served by uvicorn on loopback:
the lifespan around the user's own, the dependency in an endpoint, the API and the
dashboard mounted under /corral, on both backends."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from corral import Corral, JobContext
from corral.contrib.fastapi import (
    CorralDep,
    corral_context,
    corral_lifespan,
    get_corral,
    job_events,
    mount,
)
from corral.errors import ConfigurationError, JobNotFound
from tests.web.conftest import ADMIN_KEY, Event, LiveServer, bearer, sse_events, wait_until

QUEUE = "glue"


class Recorded(Corral):
    """A real Corral app that notes when its connections are closed."""

    def __init__(self, url: str, events: list[str]) -> None:
        super().__init__(url)
        self.events = events

    async def close(self) -> None:
        self.events.append("corral closed")
        await super().close()


def build(url: str, events: list[str]) -> Recorded:
    corral = Recorded(url, events)

    @corral.task(name="glue.add", queue=QUEUE)
    async def add(a: int, b: int) -> int:
        return a + b

    return corral


@contextlib.contextmanager
def served(app: Any):
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()
        server.join()


async def test_lifespan_wraps_the_users_and_the_dependency_enqueues(store_url: str) -> None:
    events: list[str] = []
    corral = build(store_url, events)
    at_shutdown: list[str] = []

    @contextlib.asynccontextmanager
    async def user_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # Corral is connected before this runs (the worker already registered)...
        await corral.queues()
        events.append("user startup")
        yield {"greeting": "hello"}
        events.append("user shutdown")
        # ...and still open after it: a shutdown can enqueue.
        job = await corral.enqueue("glue.add", [1, 1])
        at_shutdown.append(job.id)

    app = FastAPI(lifespan=corral_lifespan(corral, inner=user_lifespan, worker=True))

    @app.post("/sums")
    async def enqueue_sum(request: Request, jobs: CorralDep) -> dict[str, Any]:
        job = await jobs.enqueue("glue.add", [2, 3])
        return {"id": job.id, "greeting": request.state.greeting, "same": jobs is corral}

    mount(app, corral, "/corral", api_keys={ADMIN_KEY: "admin"})
    with served(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            answer = (await http.post("/sums")).json()
            assert answer["greeting"] == "hello" and answer["same"] is True
            # The in-process worker (worker=True) runs it; the mounted API reads it.
            result = await http.get(
                f"/corral/api/v1/queues/{QUEUE}/jobs/{answer['id']}/result",
                params={"timeout": 10},
                headers=bearer(ADMIN_KEY),
            )
            assert result.status_code == 200, result.text
            assert result.json()["state"] == "completed" and result.json()["result"] == 5
            queues = await http.get("/corral/api/v1/queues", headers=bearer(ADMIN_KEY))
            assert queues.status_code == 200
            assert QUEUE in [q["name"] for q in queues.json()]
            refused = await http.get("/corral/api/v1/queues")
            assert refused.status_code == 401
    assert events == ["user startup", "user shutdown", "corral closed"]
    job = await corral.get_job(at_shutdown[0], QUEUE)
    assert job.state == "waiting"  # stored at shutdown; the worker had stopped
    await corral.close()


async def test_dashboard_mounted_under_a_prefix_links_there(store_url: str) -> None:
    events: list[str] = []
    corral = build(store_url, events)
    app = FastAPI(lifespan=corral_lifespan(corral))
    mount(app, corral, "/corral")  # no keys: loopback clients only
    await corral.enqueue("glue.add", [1, 2])
    with served(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            page = await http.get("/corral/")
            assert page.status_code == 200, page.text
            assert page.headers["content-type"].startswith("text/html")
            links = re.findall(r'(?:href|src|action)="(/[^"]*)"', page.text)
            assert links and all(link.startswith("/corral/") for link in links), links
            assert f"/corral/queues/{QUEUE}" in links
            assets = [link for link in links if link.startswith("/corral/static/")]
            assert any(a.split("?")[0].endswith(".css") for a in assets)
            assert any(a.split("?")[0].endswith(".js") for a in assets)
            for asset in assets:
                assert (await http.get(asset)).status_code == 200, asset
            queue_page = await http.get(f"/corral/queues/{QUEUE}")
            assert queue_page.status_code == 200 and "glue.add" in queue_page.text
            api = await http.get("/corral/api/v1/queues")
            assert api.status_code == 200
            counts = next(q for q in api.json() if q["name"] == QUEUE)
            assert counts["waiting"] == 1
    assert events == ["corral closed"]
    await corral.close()


async def test_keyless_mount_answers_loopback_clients_only(sqlite_url: str) -> None:
    corral = Corral(sqlite_url)
    app = FastAPI()
    mount(app, corral, "/jobs", dashboard=False)
    far = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=far, base_url="http://test") as http:
        answer = await http.get("/jobs/api/v1/queues")
    assert answer.status_code == 403
    assert "api_keys" in answer.json()["error"]
    near = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=near, base_url="http://test") as http:
        assert (await http.get("/jobs/api/v1/queues")).status_code == 200
        # dashboard=False: the API alone, no pages.
        assert (await http.get("/jobs/")).status_code == 404
    await corral.close()


async def test_context_inside_the_users_own_lifespan(sqlite_url: str) -> None:
    events: list[str] = []
    corral = build(sqlite_url, events)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with corral_context(app, corral):
            events.append("user startup")
            yield
            events.append("user shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/count")
    async def count(jobs: CorralDep) -> dict[str, int]:
        return {"waiting": (await jobs.queue(QUEUE).counts())["waiting"]}

    await corral.enqueue("glue.add", [1, 2])
    with served(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            assert (await http.get("/count")).json() == {"waiting": 1}
    assert events == ["user startup", "user shutdown", "corral closed"]
    await corral.close()


async def test_a_wrong_setup_says_what_to_do(sqlite_url: str) -> None:
    app = FastAPI()

    @app.get("/")
    async def index(jobs: CorralDep) -> str:
        return repr(jobs)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        with pytest.raises(ConfigurationError, match="corral_lifespan"):
            await http.get("/")
    with pytest.raises(ConfigurationError, match="prefix"):
        mount(app, Corral(sqlite_url), "corral/")
    with pytest.raises(ConfigurationError, match="inner"):
        corral_lifespan(Corral(sqlite_url), inner=42)  # type: ignore[arg-type]
    assert get_corral.__name__ == "get_corral"


async def test_the_in_process_worker_is_stopped_at_shutdown(sqlite_url: str) -> None:
    events: list[str] = []
    corral = build(sqlite_url, events)
    app = FastAPI(lifespan=corral_lifespan(corral, worker=True))
    with served(app):
        await wait_until(lambda: _workers(corral), timeout=10)
    await wait_until(lambda: _no_workers(corral), timeout=10)
    await corral.close()


async def _workers(corral: Corral) -> bool:
    return any(QUEUE in w.queues for w in await corral.workers())


async def _no_workers(corral: Corral) -> bool:
    return not await corral.workers()


async def test_an_async_generator_lifespan_composes_too(sqlite_url: str) -> None:
    events: list[str] = []
    corral = build(sqlite_url, events)

    async def user_lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("user startup")
        yield
        events.append("user shutdown")

    app = FastAPI(lifespan=corral_lifespan(corral, inner=user_lifespan))
    with served(app):
        assert events == ["user startup"]
    assert events == ["user startup", "user shutdown", "corral closed"]


async def test_mount_alone_closes_corral_after_the_apps_shutdown(sqlite_url: str) -> None:
    events: list[str] = []
    corral = build(sqlite_url, events)

    @contextlib.asynccontextmanager
    async def user_lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await corral.enqueue("glue.add", [1, 1])  # still usable
        events.append("user shutdown")

    app = FastAPI(lifespan=user_lifespan)
    mount(app, corral, "/corral")

    @app.get("/mine")
    async def mine(jobs: CorralDep) -> bool:
        return jobs is corral  # mount() made it the app's CorralDep

    with served(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/mine")).json() is True
            assert (await http.get("/corral/api/v1/queues")).status_code == 200
    assert events == ["user shutdown", "corral closed"]
    await corral.close()


async def test_job_events_streams_one_job_through_the_apps_own_route(store_url: str) -> None:
    """job_events: a route of the app's own streams one job's state, every progress
    report and the end, with only what its view shows; an unknown job raises."""
    corral = Corral(store_url)
    gate = threading.Event()  # set by the test's loop, awaited on the server's

    @corral.task(name="glue.pages", queue=QUEUE)
    async def pages(ctx: JobContext, n: int) -> dict[str, int]:
        await asyncio.to_thread(gate.wait, 10)  # the stream is open before the first report
        for page in range(1, n + 1):
            await ctx.progress({"page": page})
        return {"pages": n}

    app = FastAPI(lifespan=corral_lifespan(corral, worker=True))

    @app.get("/follow/{job_id}")
    async def follow(job_id: str, jobs: CorralDep) -> Response:
        try:
            return await job_events(
                jobs, job_id, QUEUE, view=lambda j: {"status": j.state, "out": j.return_value}
            )
        except JobNotFound:
            return JSONResponse({"error": "no such job"}, status_code=404)

    job = await pages.enqueue(3)
    with served(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            seen: list[Event] = []
            async with http.stream("GET", f"/follow/{job.id}") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                async for event in sse_events(response):
                    seen.append(event)
                    if len(seen) == 1:
                        gate.set()
            assert (await http.get("/follow/ghost")).status_code == 404
    assert seen[0].name == "state" and set(seen[0].data) == {"status", "out"}
    progress = [e.data for e in seen if e.name == "progress"]
    # Reports may coalesce, never go backwards, and the last one is always sent.
    pages_seen = [p["progress"]["page"] for p in progress]
    assert pages_seen == sorted(pages_seen) and pages_seen[-1] == 3
    assert all(p["id"] == job.id for p in progress)
    assert seen[-1].name == "end"
    assert seen[-1].data == {"status": "completed", "out": {"pages": 3}}
    await corral.close()
