"""The OpenAPI document says what the server does (test_schemathesis.py checks that at
large): error answers, security, content types, name rules; and the answers it
promises for odd input (SQLite)."""

from __future__ import annotations

import httpx
import pytest

from corral.policy import JOB_ID, QUEUE_NAME
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import ADMIN_KEY, API_KEYS, Serve, bearer, sse_events

JSON = {"content-type": "application/json"}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict:
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _problem(responses: dict, code: int) -> bool:
    content = responses[str(code)]["content"]
    return bool(content["application/json"]["schema"] == {"$ref": "#/components/schemas/Problem"})


async def test_error_answers_and_the_bearer_scheme_are_declared(document: dict) -> None:
    retry = document["paths"]["/api/v1/queues/{queue}/jobs/{job_id}/retry"]["post"]
    for code in (401, 403, 404, 409, 413, 422, 503):
        assert _problem(retry["responses"], code), code
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert retry["security"] == [{"HTTPBearer": []}]
    enqueue = document["paths"]["/api/v1/jobs"]["post"]["responses"]
    assert {"200", "201"} <= set(enqueue)


async def test_names_carry_the_rules_of_the_policy(document: dict) -> None:
    params = document["paths"]["/api/v1/queues/{queue}/jobs/{job_id}"]["get"]["parameters"]
    patterns = {p["name"]: p["schema"]["pattern"] for p in params if p["in"] == "path"}
    assert patterns == {"queue": f"^{QUEUE_NAME}$", "job_id": f"^{JOB_ID}$"}
    body = document["components"]["schemas"]["EnqueueRequest"]["properties"]
    assert body["task"]["pattern"].startswith("^")
    assert body["args"]["items"] == {"$ref": "#/components/schemas/JsonValue"}


async def test_streams_are_declared_and_served_as_event_streams(
    document: dict, client: httpx.AsyncClient
) -> None:
    for path in ("/api/v1/queues/{queue}/events", "/api/v1/queues/{queue}/jobs/{job_id}/events"):
        responses = document["paths"][path]["get"]["responses"]
        assert list(responses["200"]["content"]) == ["text/event-stream"], path
        assert _problem(responses, 422), path
    metrics = document["paths"]["/metrics"]["get"]["responses"]
    assert list(metrics["200"]["content"]) == ["text/plain"]

    job = (await client.post("/api/v1/jobs", json={"task": "web.echo"})).json()
    await client.post(f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/cancel")
    path = f"/api/v1/queues/{QUEUE}/jobs/{job['id']}/events"
    async with client.stream("GET", path) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert [e.name async for e in sse_events(stream)] == ["state", "end"]


async def test_a_body_that_is_not_utf8_is_422_naming_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/jobs", content=b'{"task": "\xff"}', headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "body is not valid JSON (not UTF-8 text)"


async def test_405_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.put(f"/api/v1/queues/{QUEUE}/jobs/some-id")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) >= {"GET", "DELETE"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/jobs", {"task": "web.echo", "priority": True}, "priority"),
        ("/api/v1/jobs", {"task": "web.echo", "delay": "5"}, "delay"),
        (f"/api/v1/queues/{QUEUE}/clean", {"older_than": False}, "older_than"),
        ("/api/v1/jobs", {"task": "web.echo", "args": [1e20]}, "args.0"),
    ],
)
async def test_numbers_are_json_numbers(
    client: httpx.AsyncClient, path: str, body: dict, field: str
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(f"{field}: "), response.text


async def test_whole_floats_are_integers(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/jobs", json={"task": "web.echo", "attempts": 3.0})
    assert response.status_code == 201, response.text


async def test_cursors_old_and_new_and_made_up(client: httpx.AsyncClient) -> None:
    # An offset cursor of the API's first versions is still taken.
    page = await client.get(f"/api/v1/queues/{QUEUE}/jobs", params={"cursor": "9999999"})
    assert page.json() == {"jobs": [], "next_cursor": None}
    # Cursors are opaque: one of the published shape may still be made up.
    made_up = await client.get(f"/api/v1/queues/{QUEUE}/jobs", params={"cursor": "abc"})
    assert made_up.status_code == 422
    assert made_up.json()["error"].startswith("cursor is not one this queue handed out")
    bad = await client.get(f"/api/v1/queues/{QUEUE}/jobs", params={"cursor": "a.b"})
    assert bad.status_code == 422
    assert bad.json()["error"].startswith("query.cursor:")


async def test_invalid_names_are_refused_with_the_policy_rule(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/queues/a%23b/jobs")
    assert response.status_code == 422
    assert response.json()["error"] == (
        "path.queue: invalid queue name 'a#b': use 1-100 of A-Z a-z 0-9 _ . : - starting "
        "with a letter or digit"
    )


async def test_a_secured_server_refuses_missing_and_unknown_keys_alike(
    serve: Serve, url: str
) -> None:
    server = serve(build_app(url), api_keys=API_KEYS)
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        for headers in ({}, {"Authorization": "Basic abc"}, bearer("x" * 20)):
            response = await http.get("/api/v1/queues", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"] == "Bearer"
        assert (await http.get("/api/v1/queues", headers=bearer(ADMIN_KEY))).status_code == 200
