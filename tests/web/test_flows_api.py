"""Flows over HTTP: start one by naming each job's dependencies, read it back with its
jobs, edges, state and progress, cancel it; bad graphs are a 422 naming the problem."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis

from corral import Corral
from tests.web.conftest import READ_KEY, Workers, bearer, wait_until

FLOWS = "/api/v1/flows"


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


def diamond(flow_id: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "jobs": [
            {"name": "a", "task": "web.echo", "args": [1]},
            {"name": "b", "task": "web.echo", "after": [{"job": "a", "pass_result": True}]},
            {
                "name": "c",
                "task": "web.fail",
                "after": [{"job": "a"}],
            },
            {
                "name": "d",
                "task": "web.echo",
                "after": [{"job": "b"}, {"job": "c", "on_failure": "ignore"}],
            },
        ]
    }
    if flow_id:
        body["flow_id"] = flow_id
    return body


async def test_start_read_and_finish_a_flow(
    corral: Corral, client: httpx.AsyncClient, workers: Workers
) -> None:
    response = await client.post(FLOWS, json=diamond("d-1"))
    assert response.status_code == 201, response.text
    flow = response.json()
    assert (flow["id"], flow["state"], flow["created"]) == ("d-1", "running", True)
    assert flow["progress"] == {"done": 0, "total": 4}
    assert [(j["name"], j["state"]) for j in flow["jobs"]] == [
        ("a", "waiting"),
        ("b", "blocked"),
        ("c", "blocked"),
        ("d", "blocked"),
    ]
    assert {(e["from"], e["to"], e["on_failure"]) for e in flow["edges"]} == {
        ("a", "b", "fail"),
        ("a", "c", "fail"),
        ("b", "d", "fail"),
        ("c", "d", "ignore"),
    }
    again = await client.post(FLOWS, json=diamond("d-1"))
    assert again.status_code == 200 and again.json()["created"] is False
    workers.start()

    async def finished() -> bool:
        read = await client.get(f"{FLOWS}/d-1", headers=bearer(READ_KEY))
        return bool(read.json()["state"] != "running")

    await wait_until(finished, timeout=10)
    flow = (await client.get(f"{FLOWS}/d-1")).json()
    # c failed, d ignored that and completed: d is the only sink, so the flow completed.
    assert flow["state"] == "completed"
    states = {j["name"]: j["state"] for j in flow["jobs"]}
    assert states == {"a": "completed", "b": "completed", "c": "failed", "d": "completed"}
    b = flow["jobs"][1]
    assert (await corral.get_job(b["id"], b["queue"])).return_value == 1


async def test_cancel_a_flow(client: httpx.AsyncClient) -> None:
    flow = (await client.post(FLOWS, json=diamond())).json()
    response = await client.post(f"{FLOWS}/{flow['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled"
    assert {j["state"] for j in response.json()["jobs"]} == {"cancelled"}


async def test_bad_flows_are_refused_naming_the_problem(client: httpx.AsyncClient) -> None:
    cycle = {
        "jobs": [
            {"name": "a", "task": "web.echo", "after": [{"job": "b"}]},
            {"name": "b", "task": "web.echo", "after": [{"job": "a"}]},
        ]
    }
    response = await client.post(FLOWS, json=cycle)
    assert response.status_code == 422, response.text
    assert "cycle" in response.text and "a -> b -> a" in response.text.replace(
        "b -> a -> b", "a -> b -> a"
    )
    unknown = {"jobs": [{"name": "a", "task": "web.echo", "after": [{"job": "zz"}]}]}
    response = await client.post(FLOWS, json=unknown)
    assert response.status_code == 422 and "'zz', not in this flow" in response.text
    twice = {"jobs": [{"name": "a", "task": "web.echo"}, {"name": "a", "task": "web.echo"}]}
    response = await client.post(FLOWS, json=twice)
    assert response.status_code == 422 and "two jobs of the flow are named 'a'" in response.text
    response = await client.post(FLOWS, json={"jobs": [{"name": "a", "task": "no.such"}]})
    assert response.status_code in (404, 422) and "no.such" in response.text
    response = await client.get(f"{FLOWS}/missing")
    assert response.status_code == 404 and "no flow 'missing'" in response.text


async def test_retry_failed_over_http(
    corral: Corral, client: httpx.AsyncClient, workers: Workers
) -> None:
    body = {
        "jobs": [
            {"name": "bad", "task": "web.fail"},
            {"name": "next", "task": "web.echo", "after": [{"job": "bad"}]},
        ]
    }
    flow = (await client.post(FLOWS, json=body)).json()
    response = await client.post(f"{FLOWS}/{flow['id']}/retry-failed")
    assert response.status_code == 409 and "still running" in response.text
    workers.start()

    async def failed() -> bool:
        return bool((await client.get(f"{FLOWS}/{flow['id']}")).json()["state"] == "failed")

    await wait_until(failed, timeout=10)
    await workers.stop_all()
    response = await client.post(f"{FLOWS}/{flow['id']}/retry-failed")
    assert response.status_code == 200, response.text
    assert [j["state"] for j in response.json()["jobs"]] == ["waiting", "blocked"]


async def test_fail_fast_over_http(
    corral: Corral, client: httpx.AsyncClient, workers: Workers
) -> None:
    body = {
        "fail_fast": True,
        "jobs": [
            {"name": "bad", "task": "web.fail"},
            {"name": "late", "task": "web.echo", "args": [1], "after": [{"job": "bad"}]},
        ],
    }
    response = await client.post(FLOWS, json=body)
    assert response.status_code == 201, response.text
    flow = response.json()
    assert flow["fail_fast"] is True
    assert (await client.get(f"{FLOWS}/{flow['id']}")).json()["fail_fast"] is True
    workers.start()

    async def failed() -> bool:
        return bool((await client.get(f"{FLOWS}/{flow['id']}")).json()["state"] == "failed")

    await wait_until(failed, timeout=10)
    jobs = (await client.get(f"{FLOWS}/{flow['id']}")).json()["jobs"]
    assert [j["state"] for j in jobs] == ["failed", "cancelled"]  # not failed by its edge
    response = await client.post(FLOWS, json=body | {"fail_fast": "maybe"})
    assert response.status_code == 422 and "fail_fast" in response.text


async def test_retrying_one_failed_job_blocks_its_dependents_again(
    corral: Corral, client: httpx.AsyncClient, workers: Workers
) -> None:
    body = {
        "jobs": [
            {"name": "bad", "task": "web.fail"},
            {"name": "next", "task": "web.echo", "args": [1], "after": [{"job": "bad"}]},
            {"name": "last", "task": "web.echo", "args": [2], "after": [{"job": "next"}]},
        ]
    }
    flow = (await client.post(FLOWS, json=body)).json()
    workers.start()

    async def failed() -> bool:
        return bool((await client.get(f"{FLOWS}/{flow['id']}")).json()["state"] == "failed")

    await wait_until(failed, timeout=10)
    await workers.stop_all()
    bad = flow["jobs"][0]
    response = await client.post(f"/api/v1/queues/{bad['queue']}/jobs/{bad['id']}/retry")
    assert response.status_code == 200, response.text
    jobs = (await client.get(f"{FLOWS}/{flow['id']}")).json()["jobs"]
    assert [j["state"] for j in jobs] == ["waiting", "blocked", "blocked"]


async def test_list_flows_newest_first_in_pages(corral: Corral, client: httpx.AsyncClient) -> None:
    for n in range(3):
        response = await client.post(FLOWS, json=diamond(f"l-{n}"))
        assert response.status_code == 201, response.text
    first = await client.get(FLOWS, params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [f["id"] for f in page["flows"]] == ["l-2", "l-1"]
    assert page["flows"][0]["progress"] == {"done": 0, "total": 4}
    assert {"from", "to"} <= set(page["flows"][0]["edges"][0])
    rest = (await client.get(FLOWS, params={"cursor": page["next_cursor"]})).json()
    assert [f["id"] for f in rest["flows"]] == ["l-0"] and rest["next_cursor"] is None
    for bad in ({"cursor": "nonsense"}, {"limit": 0}, {"limit": 201}):
        response = await client.get(FLOWS, params=bad)
        assert response.status_code == 422, (bad, response.text)


async def test_the_list_reads_each_job_s_state_not_the_whole_job(
    client: httpx.AsyncClient, url: str
) -> None:
    response = await client.post(FLOWS, json=diamond("brief"))
    assert response.status_code == 201, response.text
    redis = aioredis.Redis.from_url(url) if url.startswith("redis") else None

    async def reads() -> tuple[int, int]:
        if redis is None:
            return 0, 0
        stats = await redis.info("commandstats")
        return tuple(  # type: ignore[return-value]
            stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("hgetall", "lrange")
        )

    try:
        before = await reads()
        page = (await client.get(FLOWS)).json()
        # Whole jobs (arguments, results, errors, logs) are one HGETALL and two LRANGEs
        # each on Redis: a listing of flows of a thousand jobs must not read them.
        assert await reads() == before
    finally:
        if redis is not None:
            await redis.aclose()
    (flow,) = page["flows"]
    assert [(j["name"], j["state"], j["task"], j["attempts"]) for j in flow["jobs"]] == [
        ("a", "waiting", "web.echo", 0),
        ("b", "blocked", "web.echo", 0),
        ("c", "blocked", "web.fail", 0),
        ("d", "blocked", "web.echo", 0),
    ]


async def test_flags_must_be_json_booleans(client: httpx.AsyncClient) -> None:
    body = diamond()
    for bad in ({"fail_fast": 0}, {"fail_fast": "yes"}):
        response = await client.post(FLOWS, json=body | bad)
        assert response.status_code == 422, (bad, response.text)
        assert "fail_fast" in response.text
    one = {"jobs": [{"name": "a", "task": "web.echo"}]}
    one["jobs"].append({"name": "b", "task": "web.echo", "after": [{"job": "a", "pass_result": 1}]})
    response = await client.post(FLOWS, json=one)
    assert response.status_code == 422 and "pass_result" in response.text
