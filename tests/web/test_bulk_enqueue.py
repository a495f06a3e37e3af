"""``POST /api/v1/jobs/bulk``: many jobs in one request, all or nothing (SQLite and Redis)."""

from __future__ import annotations

import httpx
import pytest

from corral import Corral
from tests.web.apps import QUEUE
from tests.web.conftest import Serve, Workers, wait_until

BULK = "/api/v1/jobs/bulk"


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


async def stored(corral: Corral, queue: str = QUEUE) -> int:
    counts = await corral.queue(queue).counts()
    return counts["waiting"] + counts["delayed"]


async def test_bulk_stores_every_job_in_order(client: httpx.AsyncClient, corral: Corral) -> None:
    jobs = [{"task": "web.echo", "args": [i]} for i in range(1000)]
    jobs[7] = {"task": "web.echo", "kwargs": {"value": "seven"}, "delay": 60, "priority": 5}
    response = await client.post(BULK, json={"jobs": jobs})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] == 1000
    assert len(body["jobs"]) == 1000
    assert all(j["created"] and j["queue"] == QUEUE for j in body["jobs"])
    assert len({j["id"] for j in body["jobs"]}) == 1000
    assert body["jobs"][7]["state"] == "delayed" and body["jobs"][0]["state"] == "waiting"
    assert await stored(corral) == 1000
    # Each answered id is the job made of that item.
    for index in (0, 7, 999):
        job = await corral.get_job(body["jobs"][index]["id"], QUEUE)
        expected = ([], {"value": "seven"}) if index == 7 else ([index], {})
        assert (job.args, job.kwargs) == expected
    seventh = await corral.get_job(body["jobs"][7]["id"], QUEUE)
    assert seventh.priority == 5


async def test_bulk_jobs_run(client: httpx.AsyncClient, corral: Corral, workers: Workers) -> None:
    response = await client.post(
        BULK, json={"jobs": [{"task": "web.echo", "args": [i]} for i in range(20)]}
    )
    assert response.status_code == 201, response.text
    workers.start()
    ids = [j["id"] for j in response.json()["jobs"]]

    async def all_done() -> bool:
        return (await corral.queue(QUEUE).counts())["completed"] == 20

    await wait_until(all_done, timeout=20)
    assert [await (await corral.get_job(i, QUEUE)).result(timeout=5) for i in ids[:3]] == [0, 1, 2]


async def test_one_bad_job_stores_nothing_and_each_bad_one_is_named(
    client: httpx.AsyncClient, corral: Corral
) -> None:
    jobs: list[dict[str, object]] = [{"task": "web.echo", "args": [i]} for i in range(10)]
    jobs[2] = {"task": "no.such.task"}  # not registered
    jobs[5] = {"task": "web.echo", "args": [1, 2, 3]}  # does not fit the signature
    jobs[8] = {"task": "web.echo", "priority": 5000}  # over the schema's bound
    response = await client.post(BULK, json={"jobs": jobs})
    assert response.status_code == 422, response.text
    body = response.json()
    # The schema error is found first (before any job is prepared): it alone is named.
    assert body["detail"] == [body["detail"][0]]
    assert body["detail"][0].startswith("jobs.8.priority: ")
    assert await stored(corral) == 0

    del jobs[8]
    response = await client.post(BULK, json={"jobs": jobs})
    assert response.status_code == 422, response.text
    body = response.json()
    assert len(body["detail"]) == 2
    assert body["detail"][0].startswith("jobs.2.task: no task named 'no.such.task'")
    assert body["detail"][1].startswith("jobs.5: task 'web.echo'")
    assert "2 of 9 jobs are invalid, nothing was stored" in body["error"]
    assert await stored(corral) == 0


async def test_the_message_names_ten_bad_jobs_and_detail_all(
    client: httpx.AsyncClient, corral: Corral
) -> None:
    jobs = [{"task": "no.such.task"} for _ in range(30)]
    response = await client.post(BULK, json={"jobs": jobs})
    assert response.status_code == 422
    body = response.json()
    assert len(body["detail"]) == 30
    assert body["detail"][29].startswith("jobs.29.task: ")
    assert "and 20 more (see detail)" in body["error"]
    assert await stored(corral) == 0


async def test_a_payload_over_the_limit_is_named(serve: Serve, url: str) -> None:
    from tests.web.apps import build_app

    server = serve(build_app(url, max_payload_bytes=1000))
    jobs = [{"task": "web.echo", "args": ["x"]}, {"task": "web.echo", "args": ["x" * 2000]}]
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(BULK, json={"jobs": jobs})
    assert response.status_code == 422
    (message,) = response.json()["detail"]
    assert message.startswith("jobs.1: ") and "over the limit of 1,000 bytes" in message


@pytest.mark.parametrize("count", [0, 1001])
async def test_the_number_of_jobs_is_bounded(
    client: httpx.AsyncClient, corral: Corral, count: int
) -> None:
    response = await client.post(BULK, json={"jobs": [{"task": "web.echo"}] * count})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    if count:
        assert "jobs: at most 1000 jobs per request, got 1001" in error
    else:
        assert error.startswith("jobs: ")
    assert await stored(corral) == 0


async def test_ids_make_a_bulk_idempotent(client: httpx.AsyncClient, corral: Corral) -> None:
    jobs = [{"task": "web.echo", "args": [i], "job_id": f"order-{i}"} for i in range(50)]
    first = await client.post(BULK, json={"jobs": jobs})
    assert first.status_code == 201, first.text
    assert first.json()["created"] == 50
    # A retry of the same request (say, after a lost answer) stores nothing new.
    again = await client.post(BULK, json={"jobs": jobs})
    assert again.status_code == 200, again.text
    assert again.json()["created"] == 0
    assert [j["id"] for j in again.json()["jobs"]] == [f"order-{i}" for i in range(50)]
    assert not any(j["created"] for j in again.json()["jobs"])
    # A partly new request creates only the new ones.
    more = [*jobs[:10], {"task": "web.echo", "job_id": "order-new"}]
    mixed = await client.post(BULK, json={"jobs": more})
    assert mixed.status_code == 201
    assert [j["created"] for j in mixed.json()["jobs"]] == [False] * 10 + [True]
    assert await stored(corral) == 51


async def test_jobs_of_several_queues(client: httpx.AsyncClient, corral: Corral) -> None:
    jobs = [{"task": "web.echo", "queue": "a" if i % 2 else "b", "args": [i]} for i in range(10)]
    response = await client.post(BULK, json={"jobs": jobs})
    assert response.status_code == 201, response.text
    assert [j["queue"] for j in response.json()["jobs"]] == [j["queue"] for j in jobs]
    assert (await stored(corral, "a"), await stored(corral, "b")) == (5, 5)


async def test_bulk_is_audited_once_per_queue(client: httpx.AsyncClient) -> None:
    jobs = [{"task": "web.echo", "args": [i]} for i in range(5)]
    assert (await client.post(BULK, json={"jobs": jobs})).status_code == 201
    entries = (await client.get("/api/v1/audit")).json()["entries"]
    bulk = [e for e in entries if e["action"] == "jobs.enqueue_bulk"]
    assert [(e["target"], e["detail"]) for e in bulk] == [(QUEUE, {"created": 5, "existing": 0})]


async def test_bulk_needs_write_scope(serve: Serve, url: str) -> None:
    from tests.web.apps import build_app
    from tests.web.conftest import API_KEYS, READ_KEY, WRITE_KEY, bearer

    server = serve(build_app(url), api_keys=API_KEYS)
    body = {"jobs": [{"task": "web.echo"}]}
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.post(BULK, json=body)).status_code == 401
        assert (await http.post(BULK, json=body, headers=bearer(READ_KEY))).status_code == 403
        assert (await http.post(BULK, json=body, headers=bearer(WRITE_KEY))).status_code == 201


async def test_the_bulk_route_is_documented(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    operation = spec["paths"]["/api/v1/jobs/bulk"]["post"]
    assert {"201", "200", "422"} <= set(operation["responses"])
    schema = spec["components"]["schemas"]["BulkEnqueueRequest"]["properties"]["jobs"]
    assert (schema["minItems"], schema["maxItems"]) == (1, 1000)
