"""/healthz, /readyz and the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest

from corral import Corral
from tests.web.apps import build_app
from tests.web.conftest import Serve

UNREACHABLE = "redis://user:s3cret-pw@127.0.0.1:1/0"


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_readyz_when_the_backend_answers(
    serve: Serve, backend: str, sqlite_url: str, request: pytest.FixtureRequest
) -> None:
    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("redis_url")
    server = serve(build_app(url))
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_503_with_an_error_when_the_backend_is_unreachable(
    serve: Serve,
) -> None:
    server = serve(Corral(UNREACHABLE))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unavailable"
        assert "127.0.0.1:1" in body["error"]
        assert "s3cret-pw" not in ready.text, "the password leaked"
        assert "Traceback" not in ready.text
        # The process itself is up.
        assert (await client.get("/healthz")).status_code == 200
        # API calls that need the backend answer 503 too, not 500.
        queues = await client.get("/api/v1/queues")
        assert queues.status_code == 503, queues.text
        assert "error" in queues.json()
        assert "s3cret-pw" not in queues.text, "the password leaked"


async def test_openapi_document_lists_every_path(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "Corral"
    expected = {
        "/api/v1/jobs": {"post"},
        "/api/v1/jobs/{job_id}": {"get"},
        "/api/v1/queues": {"get"},
        "/api/v1/queues/{queue}": {"get"},
        "/api/v1/queues/{queue}/jobs": {"get"},
        "/api/v1/queues/{queue}/jobs/{job_id}": {"get", "delete"},
        "/api/v1/queues/{queue}/jobs/{job_id}/result": {"get"},
        "/api/v1/queues/{queue}/jobs/{job_id}/cancel": {"post"},
        "/api/v1/queues/{queue}/jobs/{job_id}/retry": {"post"},
        "/api/v1/queues/{queue}/jobs/{job_id}/promote": {"post"},
        "/api/v1/queues/{queue}/jobs/{job_id}/events": {"get"},
        "/api/v1/queues/{queue}/events": {"get"},
        "/api/v1/queues/{queue}/retry-failed": {"post"},
        "/api/v1/queues/{queue}/pause": {"post"},
        "/api/v1/queues/{queue}/resume": {"post"},
        "/api/v1/queues/{queue}/clean": {"post"},
        "/api/v1/workers": {"get"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/metrics": {"get"},
    }
    for path, methods in expected.items():
        assert path in doc["paths"], path
        assert methods <= set(doc["paths"][path]), path
    enqueue = doc["paths"]["/api/v1/jobs"]["post"]
    assert "201" in enqueue["responses"]
    assert enqueue["requestBody"]["content"]["application/json"]["schema"]
    assert "EnqueueRequest" in doc["components"]["schemas"]


async def test_openapi_document_is_valid(client: httpx.AsyncClient) -> None:
    import schemathesis

    response = await client.get("/api/v1/openapi.json")
    schema = schemathesis.openapi.from_dict(response.json())
    schema.validate()  # against the OpenAPI meta-schema; raises when invalid
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
