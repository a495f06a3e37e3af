"""Searching and bulk actions over HTTP: filters and cursors on GET /queues/{q}/jobs,
POST /queues/{q}/bulk, and bad input answered 4xx naming the field (SQLite and Redis)."""

from __future__ import annotations

import httpx
import pytest

from corral import Corral
from tests.web.apps import QUEUE
from tests.web.conftest import ADMIN_KEY, API_KEYS, WRITE_KEY, Serve, Workers, wait_until

JOBS = f"/api/v1/queues/{QUEUE}/jobs"
BULK = f"/api/v1/queues/{QUEUE}/bulk"


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


async def enqueue(client: httpx.AsyncClient, task: str = "web.echo", **body: object) -> str:
    response = await client.post("/api/v1/jobs", json={"task": task, **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_pages_walk_with_opaque_cursors_and_old_offset_cursors_still_work(
    client: httpx.AsyncClient,
) -> None:
    ids = [await enqueue(client, args=[i]) for i in range(5)]
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = (await client.get(JOBS, params=params)).json()
        assert set(page) == {"jobs", "next_cursor"}  # a plain page, as before
        seen += [j["id"] for j in page["jobs"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ids
    old = (await client.get(JOBS, params={"limit": 2, "cursor": "2"})).json()
    assert ([j["id"] for j in old["jobs"]], old["next_cursor"]) == (ids[2:4], "4")


async def test_filters_make_a_search_that_says_how_far_it_read(client: httpx.AsyncClient) -> None:
    ann = await enqueue(client, args=["ann@example.com"], group="acme")
    await enqueue(client, args=["bob@example.com"])
    other = await enqueue(client, "web.fail", args=["nope"])
    found = (await client.get(JOBS, params={"text": "ANN@"})).json()
    assert [j["id"] for j in found["jobs"]] == [ann]
    assert (found["scanned"], found["bound"], found["exhausted"]) == (3, 5000, True)
    assert found["next_cursor"] is None
    by_task = (await client.get(JOBS, params={"task": "web.f*"})).json()
    assert [j["id"] for j in by_task["jobs"]] == [other]
    by_group = await client.get(JOBS, params={"group": "acme", "since": "2020-01-01T00:00:00Z"})
    assert [j["id"] for j in by_group.json()["jobs"]] == [ann]
    # Grouped jobs wait behind ungrouped ones of their priority: acme's is read third.
    bounded = (await client.get(JOBS, params={"group": "acme", "scan": 2})).json()
    assert (bounded["jobs"], bounded["scanned"], bounded["exhausted"]) == ([], 2, False)
    rest = await client.get(
        JOBS, params={"group": "acme", "scan": 2, "cursor": bounded["next_cursor"]}
    )
    assert [j["id"] for j in rest.json()["jobs"]] == [ann]
    assert (rest.json()["scanned"], rest.json()["exhausted"]) == (1, True)


async def test_a_failed_job_is_found_by_its_error(
    client: httpx.AsyncClient, workers: Workers, corral: Corral
) -> None:
    failing = await enqueue(client, "web.fail", args=["disk quota exceeded"], attempts=1)
    workers.start()

    async def failed() -> bool:
        return (await corral.queue(QUEUE).counts())["failed"] == 1

    await wait_until(failed)
    found = await client.get(JOBS, params={"state": "failed", "error": "QUOTA"})
    assert [j["id"] for j in found.json()["jobs"]] == [failing]
    assert (await client.get(JOBS, params={"state": "failed", "error": "x1"})).json()["jobs"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"cursor": "a" * 2001}, "cursor"),
        ({"cursor": "has spaces"}, "cursor"),
        ({"task": ""}, "task"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2030-01-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"}, "since"),
        ({"scan": 0}, "scan"),
        ({"state": "done"}, "state"),
    ],
)
async def test_bad_search_input_is_422_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    await enqueue(client)
    response = await client.get(JOBS, params=params)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]


async def test_a_cursor_from_another_state_is_refused(client: httpx.AsyncClient) -> None:
    await enqueue(client)
    await enqueue(client)
    cursor = (await client.get(JOBS, params={"limit": 1})).json()["next_cursor"]
    response = await client.get(JOBS, params={"state": "failed", "cursor": cursor})
    assert response.status_code == 422
    assert response.json()["error"] == "cursor is for 'waiting' jobs, not 'failed'"


async def test_bulk_on_ids_and_on_a_filter(client: httpx.AsyncClient) -> None:
    delayed = [await enqueue(client, args=[i], delay=600) for i in range(3)]
    waiting = [await enqueue(client, args=[i]) for i in range(4)]
    promoted = await client.post(BULK, json={"action": "promote", "ids": [*delayed, waiting[0]]})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json() == {"matched": 4, "changed": 3, "skipped": 1}
    cancelled = await client.post(
        BULK, json={"action": "cancel", "filter": {"state": "waiting", "text": "[1]"}}
    )
    assert cancelled.json() == {"matched": 2, "changed": 2, "skipped": 0}  # a delayed and a new
    counts = (await client.get(f"/api/v1/queues/{QUEUE}")).json()
    assert (counts["waiting"], counts["cancelled"]) == (5, 2)
    retried = await client.post(BULK, json={"action": "retry", "filter": {"state": "cancelled"}})
    assert retried.json() == {"matched": 2, "changed": 2, "skipped": 0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "explode", "ids": ["a"]}, "action"),
        ({"action": "retry"}, "ids"),
        ({"action": "retry", "ids": ["a"], "filter": {"state": "failed"}}, "ids"),
        ({"action": "retry", "ids": []}, "ids"),
        ({"action": "retry", "filter": {"state": "waiting"}}, "filter.state"),
        ({"action": "retry", "filter": {"state": "failed", "colour": "red"}}, "colour"),
        ({"action": "cancel", "filter": {"state": "waiting", "task": ""}}, "task"),
    ],
)
async def test_a_bad_bulk_request_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await client.post(BULK, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"], response.json()


async def test_bulk_needs_a_write_key_and_remove_an_admin_key(serve: Serve, url: str) -> None:
    from tests.web.apps import build_app

    server = serve(build_app(url), api_keys=API_KEYS)
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        write = {"Authorization": f"Bearer {WRITE_KEY}"}
        job = await http.post("/api/v1/jobs", json={"task": "web.echo"}, headers=write)
        ids = [job.json()["id"]]
        assert (await http.post(BULK, json={"action": "cancel", "ids": ids})).status_code == 401
        denied = await http.post(BULK, json={"action": "remove", "ids": ids}, headers=write)
        assert denied.status_code == 403 and "admin" in denied.json()["error"]
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        removed = await http.post(BULK, json={"action": "remove", "ids": ids}, headers=admin)
        assert removed.json() == {"matched": 1, "changed": 1, "skipped": 0}
