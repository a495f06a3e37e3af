"""The audit log over HTTP: named keys, every write and admin call recorded with who
did it, GET /api/v1/audit (admin only) with paging, dashboard actions (SQLite and
Redis)."""

from __future__ import annotations

import re

import httpx
import pytest

from corral import Corral
from corral.web.auth import parse_api_keys
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import ADMIN_KEY, READ_KEY, WRITE_KEY, LiveServer, Serve, bearer

AUDIT = "/api/v1/audit"
#: The admin and write keys are named; the read key is not (its name is derived).
KEYS = parse_api_keys(f"ops={ADMIN_KEY}:admin,ci={WRITE_KEY}:write,{READ_KEY}:read")


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


@pytest.fixture
def server(serve: Serve, url: str) -> LiveServer:
    return serve(build_app(url), api_keys=KEYS)


@pytest.fixture
async def client(server: LiveServer) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        yield http  # type: ignore[misc]


async def _log(client: httpx.AsyncClient, **params: object) -> dict:
    response = await client.get(AUDIT, params=params, headers=bearer(ADMIN_KEY))
    assert response.status_code == 200, response.text
    return response.json()


async def test_each_write_and_admin_call_is_recorded_with_its_key(
    client: httpx.AsyncClient, corral: Corral
) -> None:
    as_ci, as_ops = bearer(WRITE_KEY), bearer(ADMIN_KEY)
    made = await client.post(
        "/api/v1/jobs", json={"task": "web.echo", "args": [1], "delay": 60}, headers=as_ci
    )
    assert made.status_code == 201, made.text
    job = made.json()["id"]
    base = f"/api/v1/queues/{QUEUE}"
    calls = [
        ("post", f"{base}/jobs/{job}/promote", as_ci, None),
        ("post", f"{base}/jobs/{job}/cancel", as_ci, None),
        ("post", f"{base}/jobs/{job}/retry", as_ci, None),
        ("post", f"{base}/pause", as_ops, None),
        ("post", f"{base}/resume", as_ops, None),
        ("post", f"{base}/retry-failed", as_ops, None),
        ("post", f"{base}/clean", as_ops, {"state": "completed"}),
        ("post", f"{base}/bulk", as_ci, {"action": "cancel", "ids": [job]}),
        ("delete", f"{base}/jobs/{job}", as_ops, None),
    ]
    for method, path, headers, body in calls:
        response = await client.request(method, path, headers=headers, json=body)
        assert response.status_code in (200, 204), (path, response.text)

    entries = (await _log(client))["entries"]
    seen = [(e["key"], e["action"], e["target"]) for e in reversed(entries)]
    target = f"{QUEUE}/{job}"
    assert seen == [
        ("ci", "job.enqueue", target),
        ("ci", "job.promote", target),
        ("ci", "job.cancel", target),
        ("ci", "job.retry", target),
        ("ops", "queue.pause", QUEUE),
        ("ops", "queue.resume", QUEUE),
        ("ops", "queue.retry_failed", QUEUE),
        ("ops", "queue.clean", QUEUE),
        ("ci", "queue.bulk", QUEUE),
        ("ops", "job.remove", target),
    ]
    details = {e["action"]: e["detail"] for e in entries}
    assert details["job.enqueue"] == {"task": "web.echo", "created": True}
    assert details["queue.clean"] == {"state": "completed", "older_than": 0.0, "count": 0}
    assert details["queue.bulk"] == {"action": "cancel", "by": "ids", "matched": 1, "changed": 1}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT.*\+00:00", e["at"]) for e in entries)
    # What the API recorded, Corral reads back the same.
    assert [e.id for e in await corral.audit_entries()] == [e["id"] for e in entries]


async def test_reads_and_refused_actions_are_not_recorded(client: httpx.AsyncClient) -> None:
    made = await client.post("/api/v1/jobs", json={"task": "web.echo"}, headers=bearer(WRITE_KEY))
    job = made.json()["id"]
    base = f"/api/v1/queues/{QUEUE}"
    assert (await client.get(f"{base}/jobs/{job}", headers=bearer(READ_KEY))).status_code == 200
    refused = await client.post(f"{base}/jobs/{job}/retry", headers=bearer(WRITE_KEY))
    assert refused.status_code == 409  # waiting: nothing to retry
    denied = await client.post(f"{base}/pause", headers=bearer(WRITE_KEY))
    assert denied.status_code == 403
    assert [e["action"] for e in (await _log(client))["entries"]] == ["job.enqueue"]


async def test_only_admin_keys_read_the_log(client: httpx.AsyncClient) -> None:
    for key in (READ_KEY, WRITE_KEY):
        response = await client.get(AUDIT, headers=bearer(key))
        assert response.status_code == 403
        assert "admin needed" in response.json()["error"]
    assert (await client.get(AUDIT)).status_code == 401


async def test_the_log_pages_newest_first(client: httpx.AsyncClient, corral: Corral) -> None:
    ids = [await corral.record_audit("ops", "queue.pause", f"q{i}") for i in range(5)]
    first = await _log(client, limit=2)
    assert [e["id"] for e in first["entries"]] == ids[:2:-1]
    second = await _log(client, limit=2, before=first["next_before"])
    assert [e["id"] for e in second["entries"]] == [ids[2], ids[1]]
    last = await _log(client, limit=2, before=second["next_before"])
    assert [e["id"] for e in last["entries"]] == [ids[0]] and last["next_before"] is None


@pytest.mark.parametrize(
    ("params", "named"), [({"limit": 0}, "limit"), ({"before": "x"}, "before")]
)
async def test_bad_paging_is_named(client: httpx.AsyncClient, params: dict, named: str) -> None:
    response = await client.get(AUDIT, params=params, headers=bearer(ADMIN_KEY))
    assert response.status_code == 422
    assert named in response.json()["error"]


async def test_dashboard_actions_are_recorded_with_the_viewers_key_name(
    server: LiveServer, corral: Corral
) -> None:
    job = await corral.enqueue("web.echo", delay=60)
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as browser:
        login = await browser.post("/login", data={"key": ADMIN_KEY})
        assert login.status_code == 303
        page = await browser.get(f"/queues/{QUEUE}/jobs/{job.id}")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text[:500]
        csrf = {"csrf": found.group(1)}
        for path, form in [
            (f"/queues/{QUEUE}/jobs/{job.id}/promote", csrf),
            (f"/queues/{QUEUE}/pause", csrf),
            ("/enqueue", {**csrf, "task": "web.echo", "args": "[2]"}),
        ]:
            done = await browser.post(path, data=form)
            assert done.status_code == 303, (path, done.text[:500])
    entries = await corral.audit_entries()
    assert [(e.key, e.action, e.target) for e in reversed(entries[1:])] == [
        ("ops", "job.promote", f"{QUEUE}/{job.id}"),
        ("ops", "queue.pause", QUEUE),
    ]
    assert (entries[0].key, entries[0].action, entries[0].detail) == (
        "ops",
        "job.enqueue",
        {"task": "web.echo", "created": True},
    )
