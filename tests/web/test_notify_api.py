"""Notification endpoints over HTTP: list the disabled or failing ones, enable one
(SQLite and Redis)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from corral import Corral
from tests.web.apps import build_app
from tests.web.conftest import ADMIN_KEY, API_KEYS, READ_KEY, WRITE_KEY, Serve, bearer

ENDPOINTS = "/api/v1/notify/endpoints"
KEY = "webhook:0a1b2c3d4e5f6071"


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


@pytest.fixture
async def disabled(corral: Corral) -> Corral:
    backend = await corral.backend()
    state = {"label": "https://hooks.example.com", "disabled": True, "reason": "answered 410"}
    await backend.set_endpoint(KEY, orjson.dumps(state | {"at": 1_764_000_000.5}))
    return corral


async def test_list_then_enable(disabled: Corral, client: httpx.AsyncClient) -> None:
    listed = await client.get(ENDPOINTS)
    assert listed.status_code == 200, listed.text
    assert listed.json() == [
        {
            "key": KEY,
            "label": "https://hooks.example.com",
            "disabled": True,
            "failing": False,
            "reason": "answered 410",
            "at": 1_764_000_000.5,
        }
    ]
    enabled = await client.post(f"{ENDPOINTS}/{KEY}/enable")
    assert enabled.status_code == 204, enabled.text
    assert (await client.get(ENDPOINTS)).json() == []
    assert await disabled.notify_endpoints() == []
    [entry] = await disabled.audit_entries(1)
    assert (entry.action, entry.target) == ("notify.enable", KEY)


async def test_unknown_and_invalid_keys(disabled: Corral, client: httpx.AsyncClient) -> None:
    missing = await client.post(f"{ENDPOINTS}/webhook:nope/enable")
    assert missing.status_code == 404
    assert "no endpoint 'webhook:nope'" in missing.json()["error"]
    invalid = await client.post(f"{ENDPOINTS}/no%20spaces/enable")
    assert invalid.status_code == 422


async def test_scopes(disabled: Corral, serve: Serve, url: str) -> None:
    server = serve(build_app(url), api_keys=API_KEYS)
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        assert (await http.get(ENDPOINTS)).status_code == 401
        assert (await http.get(ENDPOINTS, headers=bearer(READ_KEY))).status_code == 200
        enable = f"{ENDPOINTS}/{KEY}/enable"
        assert (await http.post(enable, headers=bearer(WRITE_KEY))).status_code == 403
        assert (await http.post(enable, headers=bearer(ADMIN_KEY))).status_code == 204
    assert await disabled.notify_endpoints() == []
