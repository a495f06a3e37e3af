"""GET /api/v1/queues/{q}/jobs/{id}/blockers and the workers' jobs + version, over
HTTP on both backends."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

import corral as corral_pkg
from corral import Corral
from tests.web.apps import QUEUE
from tests.web.conftest import Workers, wait_until
from tests.web.test_validation import assert_names

JOBS = "/api/v1/jobs"


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


def blockers_path(job_id: str, queue: str = QUEUE) -> str:
    return f"/api/v1/queues/{queue}/jobs/{job_id}/blockers"


async def enqueue(client: httpx.AsyncClient, **body: object) -> str:
    response = await client.post(JOBS, json={"task": "web.echo", **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_blockers_of_a_waiting_job_in_a_paused_queue(client: httpx.AsyncClient) -> None:
    first = await enqueue(client)
    second = await enqueue(client)
    assert (await client.post(f"/api/v1/queues/{QUEUE}/pause")).status_code == 200
    response = await client.get(blockers_path(second))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": second,
        "queue": QUEUE,
        "state": "waiting",
        "blockers": [
            {"kind": "paused", "message": f"the queue {QUEUE!r} is paused", "until": None},
            {
                "kind": "no_worker",
                "message": f"no live worker listens on queue {QUEUE!r}",
                "until": None,
            },
            {"kind": "position", "message": "1 job is ahead of it in line", "until": None},
        ],
    }
    assert [b["kind"] for b in (await client.get(blockers_path(first))).json()["blockers"]] == [
        "paused",
        "no_worker",
    ]


async def test_a_delayed_job_says_until_when(client: httpx.AsyncClient) -> None:
    job_id = await enqueue(client, delay=3600)
    job = (await client.get(f"/api/v1/queues/{QUEUE}/jobs/{job_id}")).json()
    [delayed, no_worker] = (await client.get(blockers_path(job_id))).json()["blockers"]
    assert delayed["kind"] == "delayed" and no_worker["kind"] == "no_worker"
    assert datetime.fromisoformat(delayed["until"]) == datetime.fromisoformat(job["run_at"])
    assert delayed["message"].startswith("it is delayed until ")


async def test_with_a_live_worker_a_paused_queue_is_the_only_blocker(
    client: httpx.AsyncClient, corral: Corral, workers: Workers
) -> None:
    await corral.queue(QUEUE).pause()
    worker = workers.start()

    async def registered() -> bool:
        response = await client.get("/api/v1/workers")
        return [w["id"] for w in response.json()] == [worker.id]

    await wait_until(registered)
    job_id = await enqueue(client)
    body = (await client.get(blockers_path(job_id))).json()
    assert [b["kind"] for b in body["blockers"]] == ["paused"]


async def test_the_workers_answer_lists_jobs_and_version(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    worker = workers.start(heartbeat=0.05)
    job = await client.post(JOBS, json={"task": "web.block", "args": [30]})
    job_id = job.json()["id"]

    async def running() -> list[dict[str, object]] | None:
        listed = (await client.get("/api/v1/workers")).json()
        return listed if [w["jobs"] for w in listed] == [[[QUEUE, job_id]]] else None

    [info] = await wait_until(running)
    assert (info["id"], info["version"]) == (worker.id, corral_pkg.__version__)
    body = (await client.get(blockers_path(job_id))).json()
    assert (body["state"], body["blockers"]) == ("active", [])
    assert (await client.get(f"/api/v1/queues/{QUEUE}/jobs/{job_id}")).json()["worker"] == worker.id
    assert (await client.post(f"/api/v1/queues/{QUEUE}/jobs/{job_id}/cancel")).status_code == 200


async def test_blockers_of_a_missing_job_are_404_naming_it(client: httpx.AsyncClient) -> None:
    job_id = await enqueue(client)
    assert_names(await client.get(blockers_path("no-such-job")), "no-such-job", status=404)
    assert_names(await client.get(blockers_path(job_id, "other")), job_id, status=404)


@pytest.mark.parametrize(
    ("queue", "job_id", "word"),
    [
        ("bad queue!", "j1", "queue"),
        (QUEUE, "x" * 201, "job_id"),
        ("q" * 101, "j1", "queue"),
    ],
    ids=["queue-alphabet", "id-too-long", "queue-too-long"],
)
async def test_blockers_with_a_bad_queue_or_id_are_422_naming_it(
    client: httpx.AsyncClient, queue: str, job_id: str, word: str
) -> None:
    assert_names(await client.get(blockers_path(job_id, queue)), word)
