"""Enqueue, read, wait for and act on jobs over HTTP (SQLite and Redis)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from corral import Corral, JobContext, WaitForChildren, chain
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import Serve, Workers, wait_until

JOBS = "/api/v1/jobs"


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


async def enqueue(client: httpx.AsyncClient, task: str = "web.echo", **body: object) -> dict:
    response = await client.post(JOBS, json={"task": task, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def job_state(client: httpx.AsyncClient, job_id: str) -> str:
    response = await client.get(f"/api/v1/queues/{QUEUE}/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return str(response.json()["state"])


# -- POST /api/v1/jobs ---------------------------------------------------------------


async def test_enqueue_creates_a_waiting_job(client: httpx.AsyncClient) -> None:
    response = await client.post(JOBS, json={"task": "web.echo", "args": ["hi"]})
    assert response.status_code == 201
    job = response.json()
    assert job["created"] is True
    assert job["state"] == "waiting"
    assert job["name"] == "web.echo"
    assert job["queue"] == QUEUE
    assert job["args"] == ["hi"]
    assert job["kwargs"] == {}
    assert job["id"]


async def test_enqueue_with_a_group_and_a_dedupe_key(client: httpx.AsyncClient) -> None:
    body = {"task": "web.echo", "args": ["first"], "group": "restaurant-42", "dedupe_key": "k"}
    first = await client.post(JOBS, json=body)
    assert first.status_code == 201, first.text
    assert first.json()["group"] == "restaurant-42"
    again = await client.post(JOBS, json={**body, "args": ["second"]})
    assert again.status_code == 200
    assert (again.json()["created"], again.json()["id"]) == (False, first.json()["id"])
    assert again.json()["args"] == ["first"]


async def test_debounced_enqueue_replaces_the_arguments(client: httpx.AsyncClient) -> None:
    body = {"task": "web.echo", "dedupe_key": "sync-7", "debounce": 60}
    first = await client.post(JOBS, json={**body, "args": ["one"]})
    assert (first.status_code, first.json()["state"]) == (201, "delayed")
    again = await client.post(JOBS, json={**body, "args": ["two"]})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["args"] == ["two"]


async def test_enqueue_with_the_same_job_id_returns_the_existing_job(
    client: httpx.AsyncClient,
) -> None:
    body = {"task": "web.echo", "args": ["first"], "job_id": "order-42"}
    first = await client.post(JOBS, json=body)
    assert first.status_code == 201
    assert first.json()["created"] is True
    again = await client.post(JOBS, json={**body, "args": ["second"]})
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["id"] == "order-42"
    assert again.json()["args"] == ["first"]


async def test_enqueue_of_an_unknown_task_is_refused_naming_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(JOBS, json={"task": "billing.nope"})
    assert response.status_code == 422
    assert "billing.nope" in response.json()["error"]


async def test_allow_unregistered_accepts_an_unknown_task(serve: Serve, url: str) -> None:
    server = serve(build_app(url), allow_unregistered=True)
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post(JOBS, json={"task": "billing.nope", "queue": "billing"})
        assert response.status_code == 201, response.text
        assert response.json()["name"] == "billing.nope"
        assert response.json()["queue"] == "billing"
        default = await client.post(JOBS, json={"task": "other.nope"})
        assert default.status_code == 201, default.text
        assert default.json()["queue"] == "default"


async def test_enqueue_with_delay_is_delayed(client: httpx.AsyncClient) -> None:
    job = await enqueue(client, delay=60)
    assert job["state"] == "delayed"
    assert job["run_at"] is not None


@pytest.mark.parametrize(
    "options",
    [{}, {"delay": 60}, {"delay": 0}, {"job_id": "stamped-1", "priority": 3}],
    ids=["plain", "delayed", "zero-delay", "given-id"],
)
async def test_the_enqueue_answer_is_the_stored_job(
    client: httpx.AsyncClient, options: dict[str, Any]
) -> None:
    # Redis says when it stored the job instead of the API reading it back: what the
    # answer shows must be what a read shows.
    job = await enqueue(client, **options)
    stored = await client.get(f"/api/v1/queues/{job['queue']}/jobs/{job['id']}")
    assert stored.status_code == 200
    for field in ("state", "created_at", "run_at", "priority", "args", "kwargs", "group"):
        assert job[field] == stored.json()[field], field
    assert job["created_at"] is not None


async def test_enqueue_options_are_accepted(client: httpx.AsyncClient, workers: Workers) -> None:
    job = await enqueue(
        client, args=["x"], priority=7, attempts=2, timeout=5, queue="web", job_id="opts-1"
    )
    assert job["priority"] == 7
    assert job["id"] == "opts-1"
    workers.start()
    response = await client.get(
        f"/api/v1/queues/{QUEUE}/jobs/opts-1/result", params={"timeout": 10}
    )
    assert response.status_code == 200
    assert response.json()["state"] == "completed"
    assert response.json()["result"] == "x"


# -- GET a job -----------------------------------------------------------------------


async def test_find_a_job_by_id_in_any_queue(client: httpx.AsyncClient) -> None:
    job = await enqueue(client, args=[1])
    response = await client.get(f"{JOBS}/{job['id']}")
    assert response.status_code == 200
    assert response.json()["id"] == job["id"]
    assert response.json()["queue"] == QUEUE
    missing = await client.get(f"{JOBS}/no-such-job")
    assert missing.status_code == 404
    assert "no-such-job" in missing.json()["error"]


async def test_get_a_job_of_a_queue(client: httpx.AsyncClient) -> None:
    job = await enqueue(client, kwargs={"value": {"a": 1}})
    response = await client.get(f"/api/v1/queues/{QUEUE}/jobs/{job['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["kwargs"] == {"value": {"a": 1}}
    for field in ("progress", "result", "errors", "logs", "created_at", "attempts"):
        assert field in body
    missing = await client.get(f"/api/v1/queues/{QUEUE}/jobs/unknown-id")
    assert missing.status_code == 404
    assert "unknown-id" in missing.json()["error"]
    elsewhere = await client.get(f"/api/v1/queues/other/jobs/{job['id']}")
    assert elsewhere.status_code == 404


# -- long-poll for the result --------------------------------------------------------


async def test_result_of_a_job_that_finishes_quickly(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    workers.start()
    job = await enqueue(client, args=["hello"])
    response = await client.get(
        f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/result", params={"timeout": 10}
    )
    assert response.status_code == 200
    assert response.json()["state"] == "completed"
    assert response.json()["result"] == "hello"


async def test_result_times_out_with_202_when_nobody_runs_the_job(
    client: httpx.AsyncClient,
) -> None:
    job = await enqueue(client)
    started = time.monotonic()
    response = await client.get(
        f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/result", params={"timeout": 0.5}
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert response.json()["state"] == "waiting"
    assert 0.4 <= elapsed < 5


async def test_result_answers_as_soon_as_a_worker_completes_the_job(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    job = await enqueue(client, args=["late"])
    started = time.monotonic()
    poll = asyncio.create_task(
        client.get(f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/result", params={"timeout": 30})
    )
    await asyncio.sleep(0.3)
    assert not poll.done()
    workers.start()
    response = await asyncio.wait_for(poll, 15)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["result"] == "late"
    assert elapsed < 5, f"the answer came after {elapsed:.1f} s (timeout was 30 s)"


async def test_result_of_an_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/queues/{QUEUE}/jobs/nope/result", params={"timeout": 0})
    assert response.status_code == 404


# -- actions ---------------------------------------------------------------------------


async def test_cancel_then_retry_a_waiting_job(client: httpx.AsyncClient) -> None:
    job = await enqueue(client)
    base = f"/api/v1/queues/{QUEUE}/jobs/{job['id']}"
    cancelled = await client.post(f"{base}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    retried = await client.post(f"{base}/retry")
    assert retried.status_code == 200
    assert retried.json()["state"] == "waiting"


async def test_retry_of_a_waiting_job_is_a_conflict_with_a_message(
    client: httpx.AsyncClient,
) -> None:
    job = await enqueue(client)
    response = await client.post(f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/retry")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error == f"job {job['id']} is waiting; it cannot be retried"
    assert await job_state(client, job["id"]) == "waiting"


async def test_promote_a_delayed_job(client: httpx.AsyncClient) -> None:
    job = await enqueue(client, delay=3600)
    response = await client.post(f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/promote")
    assert response.status_code == 200
    assert response.json()["state"] == "waiting"
    again = await client.post(f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/promote")
    assert again.status_code == 409
    assert again.json()["error"] == f"job {job['id']} is waiting; it cannot be promoted"


async def test_cancel_of_a_completed_job_is_a_conflict(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    workers.start()
    job = await enqueue(client)
    base = f"/api/v1/queues/{QUEUE}/jobs/{job['id']}"
    assert (await client.get(f"{base}/result", params={"timeout": 10})).status_code == 200
    response = await client.post(f"{base}/cancel")
    assert response.status_code == 409
    assert "completed" in response.json()["error"]


async def test_actions_on_an_unknown_job_are_404(client: httpx.AsyncClient) -> None:
    for action in ("cancel", "retry", "promote"):
        response = await client.post(f"/api/v1/queues/{QUEUE}/jobs/ghost/{action}")
        assert response.status_code == 404, action
    assert (await client.delete(f"/api/v1/queues/{QUEUE}/jobs/ghost")).status_code == 404


async def test_delete_a_job(client: httpx.AsyncClient) -> None:
    job = await enqueue(client)
    response = await client.delete(f"/api/v1/queues/{QUEUE}/jobs/{job['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"/api/v1/queues/{QUEUE}/jobs/{job['id']}")).status_code == 404


async def test_delete_of_an_active_job_is_a_conflict_then_cancel_stops_it(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    workers.start()
    job = await enqueue(client, "web.block", args=[30])
    await wait_until(lambda: _is(client, job["id"], "active"))
    response = await client.delete(f"/api/v1/queues/{QUEUE}/jobs/{job['id']}")
    assert response.status_code == 409
    assert "active" in response.json()["error"]
    cancel = await client.post(f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/cancel")
    assert cancel.status_code == 200
    assert cancel.json()["cancel_requested"] is True or cancel.json()["state"] == "cancelled"
    await wait_until(lambda: _is(client, job["id"], "cancelled"))
    deleted = await client.delete(f"/api/v1/queues/{QUEUE}/jobs/{job['id']}")
    assert deleted.status_code == 204


async def _is(client: httpx.AsyncClient, job_id: str, state: str) -> bool:
    return await job_state(client, job_id) == state


# -- spawned children ----------------------------------------------------------------


async def test_a_parent_lists_the_children_it_spawned(
    corral: Corral, client: httpx.AsyncClient, workers: Workers
) -> None:
    """GET of one job names the jobs it spawned (WaitForChildren) with their queue and
    state, in the order spawned; a job that spawned none has an empty list, and lists
    of jobs leave the field out (null)."""

    @corral.task(name="web.parent", queue=QUEUE)
    async def parent(ctx: JobContext) -> int:
        results = await ctx.dependency_results()
        if not results:
            pages = [corral.call("web.echo", [n]) for n in (1, 2)]
            raise WaitForChildren([*pages, corral.call("web.fail")], on_failure="ignore")
        return sum(results.values())

    job = await parent.enqueue()
    lone = await corral.enqueue("web.echo", [1])
    workers.start()
    assert await job.result(timeout=10) == 3
    for path in (f"/api/v1/queues/{QUEUE}/jobs/{job.id}", f"{JOBS}/{job.id}"):
        response = await client.get(path)
        assert response.status_code == 200, response.text
        assert response.json()["children"] == [
            {"name": name, "queue": QUEUE, "id": f"{job.id}.s0.{n}", "state": state, "task": task}
            for n, (name, state, task) in enumerate(
                [
                    ("echo", "completed", "web.echo"),
                    ("echo#2", "completed", "web.echo"),
                    ("fail", "failed", "web.fail"),
                ]
            )
        ]
    response = await client.get(f"/api/v1/queues/{QUEUE}/jobs/{lone.id}")
    assert response.json()["children"] == []
    listed = await client.get(f"/api/v1/queues/{QUEUE}/jobs", params={"state": "completed"})
    assert listed.status_code == 200, listed.text
    assert all(row["children"] is None for row in listed.json()["jobs"])


async def test_a_spawned_child_names_its_parent(
    corral: Corral, client: httpx.AsyncClient, workers: Workers
) -> None:
    """GET of one job gives ``parent: {queue, id}`` for a child spawned by
    WaitForChildren (each child of a chain, the one in another queue too), null for
    any other job and once the parent is removed; the OpenAPI model says so."""

    @corral.task(name="web.chain_parent", queue=QUEUE)
    async def chain_parent(ctx: JobContext) -> list[Any]:
        results = await ctx.dependency_results()
        if not results:
            raise WaitForChildren(
                chain(
                    corral.call("web.echo", [1]),
                    corral.call("web.echo", queue="web-other"),
                )
            )
        return sorted(results)

    job = await chain_parent.enqueue()
    workers.start([QUEUE, "web-other"])
    assert await job.result(timeout=10) == ["echo", "echo#2"]
    parent = {"queue": QUEUE, "id": job.id}
    for queue, child in ((QUEUE, f"{job.id}.s0.0"), ("web-other", f"{job.id}.s0.1")):
        for path in (f"/api/v1/queues/{queue}/jobs/{child}", f"{JOBS}/{child}"):
            response = await client.get(path)
            assert response.status_code == 200, response.text
            assert response.json()["parent"] == parent
    response = await client.get(f"/api/v1/queues/{QUEUE}/jobs/{job.id}")
    assert response.json()["parent"] is None
    spec = (await client.get("/api/v1/openapi.json")).json()["components"]["schemas"]
    assert set(spec["ParentOut"]["properties"]) == {"queue", "id"}
    assert "parent" in spec["JobOut"]["properties"]
    assert await job.remove()
    response = await client.get(f"/api/v1/queues/{QUEUE}/jobs/{job.id}.s0.0")
    assert response.json()["parent"] is None
