"""Queues over HTTP: counts and health, job listings and pages, bulk operations,
workers (SQLite and Redis)."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.web.apps import QUEUE
from tests.web.conftest import Workers, wait_until

QUEUES = "/api/v1/queues"


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


async def enqueue(client: httpx.AsyncClient, task: str = "web.echo", **body: object) -> dict:
    response = await client.post("/api/v1/jobs", json={"task": task, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def queue_of(client: httpx.AsyncClient, name: str = QUEUE) -> dict:
    response = await client.get(f"{QUEUES}/{name}")
    assert response.status_code == 200, response.text
    return response.json()


# -- counts and health -----------------------------------------------------------------


async def test_no_queues_at_first(client: httpx.AsyncClient) -> None:
    response = await client.get(QUEUES)
    assert response.status_code == 200
    assert response.json() == []


async def test_waiting_jobs_and_no_worker_is_unhealthy(client: httpx.AsyncClient) -> None:
    await enqueue(client)
    await enqueue(client)
    await enqueue(client, delay=60)
    response = await client.get(QUEUES)
    assert response.status_code == 200
    [queue] = response.json()
    assert queue["name"] == QUEUE
    assert queue["waiting"] == 2
    assert queue["delayed"] == 1
    assert queue["active"] == queue["completed"] == queue["failed"] == queue["cancelled"] == 0
    assert queue["paused"] is False
    assert queue["workers"] == 0
    assert queue["healthy"] is False
    assert "no live worker" in queue["reason"]
    assert await queue_of(client) == queue


async def test_a_queue_without_jobs_is_healthy(client: httpx.AsyncClient) -> None:
    queue = await queue_of(client, "never-used")
    assert queue["name"] == "never-used"
    assert queue["waiting"] == 0
    assert queue["healthy"] is True
    assert queue["reason"] == "ok"


async def test_waiting_jobs_with_a_live_worker_is_healthy_until_paused(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    workers.start(concurrency=1)
    blocker = await enqueue(client, "web.block", args=[30])
    await enqueue(client)  # waits behind the blocker: the worker runs one job at a time

    async def one_active_one_waiting() -> bool:
        queue = await queue_of(client)
        return queue["active"] == 1 and queue["waiting"] == 1 and queue["workers"] == 1

    await wait_until(one_active_one_waiting)
    queue = await queue_of(client)
    assert queue["healthy"] is True, queue
    assert queue["reason"] == "ok"

    paused = await client.post(f"{QUEUES}/{QUEUE}/pause")
    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    assert paused.json()["healthy"] is False
    assert "paused" in paused.json()["reason"]
    [listed] = (await client.get(QUEUES)).json()
    assert listed["healthy"] is False

    resumed = await client.post(f"{QUEUES}/{QUEUE}/resume")
    assert resumed.status_code == 200
    assert resumed.json()["paused"] is False
    cancel = await client.post(f"{QUEUES}/{QUEUE}/jobs/{blocker['id']}/cancel")
    assert cancel.status_code == 200


async def test_pause_and_resume(client: httpx.AsyncClient, workers: Workers) -> None:
    paused = await client.post(f"{QUEUES}/{QUEUE}/pause")
    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    assert paused.json()["healthy"] is True  # nothing waits
    workers.start()
    job = await enqueue(client, args=["after pause"])
    waited = await client.get(f"{QUEUES}/{QUEUE}/jobs/{job['id']}/result", params={"timeout": 0.5})
    assert waited.status_code == 202, "a paused queue ran a job"
    resumed = await client.post(f"{QUEUES}/{QUEUE}/resume")
    assert resumed.status_code == 200
    assert resumed.json()["paused"] is False
    done = await client.get(f"{QUEUES}/{QUEUE}/jobs/{job['id']}/result", params={"timeout": 10})
    assert done.status_code == 200
    assert done.json()["result"] == "after pause"


# -- listing jobs ------------------------------------------------------------------------


async def test_list_jobs_by_state_with_a_limit(client: httpx.AsyncClient) -> None:
    waiting = [await enqueue(client, args=[i]) for i in range(3)]
    delayed = await enqueue(client, delay=60)
    response = await client.get(f"{QUEUES}/{QUEUE}/jobs")
    assert response.status_code == 200
    assert [j["id"] for j in response.json()["jobs"]] == [j["id"] for j in waiting]
    assert response.json()["next_cursor"] is None

    only_delayed = await client.get(f"{QUEUES}/{QUEUE}/jobs", params={"state": "delayed"})
    assert [j["id"] for j in only_delayed.json()["jobs"]] == [delayed["id"]]
    none_failed = await client.get(f"{QUEUES}/{QUEUE}/jobs", params={"state": "failed"})
    assert none_failed.json() == {"jobs": [], "next_cursor": None}

    limited = await client.get(f"{QUEUES}/{QUEUE}/jobs", params={"limit": 2})
    assert [j["id"] for j in limited.json()["jobs"]] == [j["id"] for j in waiting[:2]]
    assert limited.json()["next_cursor"]


async def test_cursor_pagination_walks_every_page_exactly_once(
    client: httpx.AsyncClient,
) -> None:
    ids = [(await enqueue(client, args=[i]))["id"] for i in range(7)]
    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, str | int] = {"limit": 3, "state": "waiting"}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(f"{QUEUES}/{QUEUE}/jobs", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        sizes.append(len(page["jobs"]))
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [3, 3, 1]
    assert seen == ids  # waiting jobs come in the order they will run


async def test_exactly_full_last_page_has_no_next_cursor(client: httpx.AsyncClient) -> None:
    for i in range(4):
        await enqueue(client, args=[i])
    first = (await client.get(f"{QUEUES}/{QUEUE}/jobs", params={"limit": 2})).json()
    second = (
        await client.get(
            f"{QUEUES}/{QUEUE}/jobs", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert len(second["jobs"]) == 2
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    ["not-a-cursor!", "%%%", base64.urlsafe_b64encode(b"-1").decode(), "MS41"],
    ids=["garbage", "percent", "negative", "float"],
)
async def test_a_bad_cursor_is_422(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get(f"{QUEUES}/{QUEUE}/jobs", params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert "cursor" in response.json()["error"]


async def test_a_cursor_with_a_huge_offset_is_422_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    """A forged cursor decoding to an offset past 2**63 must be refused as bad input.

    BUG (found by this suite): SQLite answers 500 (OverflowError: Python int too large
    to convert to SQLite INTEGER, in SQLiteBackend.list_jobs); Redis answers 503
    ("Redis ... refused a command: value is not an integer or out of range"), as if
    the backend were down. ``api._offset`` accepts any non-negative int.
    """
    await enqueue(client)
    cursor = base64.urlsafe_b64encode(b"9" * 20).decode()
    response = await client.get(f"{QUEUES}/{QUEUE}/jobs", params={"cursor": cursor})
    assert response.status_code == 422, f"{response.status_code} {response.text}"
    assert "cursor" in response.json()["error"]


async def test_list_jobs_of_an_invalid_state_or_limit_is_422(client: httpx.AsyncClient) -> None:
    bad_state = await client.get(f"{QUEUES}/{QUEUE}/jobs", params={"state": "sleeping"})
    assert bad_state.status_code == 422
    assert "state" in bad_state.json()["error"]
    for limit in (0, 501, "x"):
        response = await client.get(f"{QUEUES}/{QUEUE}/jobs", params={"limit": limit})
        assert response.status_code == 422, limit
        assert "limit" in response.json()["error"]


# -- bulk operations -------------------------------------------------------------------


async def test_retry_failed_puts_failed_jobs_back(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    worker = workers.start()
    jobs = [await enqueue(client, "web.fail", args=[f"boom {i}"]) for i in range(2)]
    await wait_until(lambda: _count(client, "failed", 2))
    await workers.stop(worker)
    failed = await client.get(f"{QUEUES}/{QUEUE}/jobs/{jobs[0]['id']}")
    assert failed.json()["state"] == "failed"
    assert "boom 0" in str(failed.json()["errors"])

    response = await client.post(f"{QUEUES}/{QUEUE}/retry-failed")
    assert response.status_code == 200
    assert response.json() == {"count": 2}
    queue = await queue_of(client)
    assert queue["failed"] == 0
    assert queue["waiting"] == 2
    again = await client.post(f"{QUEUES}/{QUEUE}/retry-failed")
    assert again.json() == {"count": 0}


async def test_clean_deletes_finished_jobs(client: httpx.AsyncClient, workers: Workers) -> None:
    workers.start()
    jobs = [await enqueue(client, args=[i]) for i in range(3)]
    await wait_until(lambda: _count(client, "completed", 3))
    kept = await client.post(f"{QUEUES}/{QUEUE}/clean", json={"older_than": 3600})
    assert kept.status_code == 200
    assert kept.json() == {"count": 0}
    response = await client.post(f"{QUEUES}/{QUEUE}/clean", json={"state": "completed"})
    assert response.status_code == 200
    assert response.json() == {"count": 3}
    assert (await queue_of(client))["completed"] == 0
    gone = await client.get(f"{QUEUES}/{QUEUE}/jobs/{jobs[0]['id']}")
    assert gone.status_code == 404


async def test_clean_refuses_unfinished_states_and_bad_limits(client: httpx.AsyncClient) -> None:
    for body in ({"state": "waiting"}, {"limit": 0}, {"older_than": -1}, {"nope": 1}):
        response = await client.post(f"{QUEUES}/{QUEUE}/clean", json=body)
        assert response.status_code == 422, body
        assert next(iter(body)) in response.json()["error"]


async def test_clean_with_a_huge_older_than_is_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    """BUG (found by this suite): ``older_than`` has no upper bound in CleanRequest
    (web/schemas.py); 1e308 makes ``Queue.clean`` (queue.py:82) raise
    ``OverflowError: cannot convert float infinity to integer`` -> 500 on both backends;
    1e20 overflows the SQLite INTEGER in SQLiteBackend.clean -> 500 on SQLite."""
    for older_than in (1e20, 1e308):
        response = await client.post(f"{QUEUES}/{QUEUE}/clean", json={"older_than": older_than})
        assert response.status_code < 500, f"older_than={older_than}: {response.status_code}"


# -- workers ---------------------------------------------------------------------------


async def test_workers_lists_the_live_workers(client: httpx.AsyncClient, workers: Workers) -> None:
    assert (await client.get("/api/v1/workers")).json() == []
    worker = workers.start(concurrency=3)

    async def listed() -> list[dict]:
        response = await client.get("/api/v1/workers")
        assert response.status_code == 200
        return list(response.json())

    [info] = await wait_until(listed)
    assert info["id"] == worker.id
    assert info["queues"] == [QUEUE]
    assert info["concurrency"] == 3
    for field in ("host", "pid", "active", "processed", "failed", "started_at", "last_seen"):
        assert field in info
    await workers.stop(worker)
    assert await listed() == []


async def _count(client: httpx.AsyncClient, state: str, expected: int) -> bool:
    return (await queue_of(client))[state] == expected
