"""A job whose stored data cannot be decoded is listed and shown flagged (its raw text),
never a 5xx, and can still be retried and removed (SQLite and Redis)."""

from __future__ import annotations

import httpx
import pytest

from corral import Corral
from tests.corrupt import FIELDS, write_raw
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import ADMIN_KEY, API_KEYS, READ_KEY, Serve, Workers, bearer, wait_until

GARBAGE = b'\xff{"token": "s3cret'
GARBAGE_TEXT = '\ufffd{"token": "s3cret'
BASE = f"/api/v1/queues/{QUEUE}/jobs"


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


async def _failed_jobs(http: httpx.AsyncClient, corral: Corral, workers: Workers) -> list[str]:
    ids = []
    for n in range(3):
        body = {"task": "web.fail", "kwargs": {"message": f"m{n}"}}
        response = await http.post("/api/v1/jobs", json=body, headers=bearer(ADMIN_KEY))
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    worker = workers.start()
    await wait_until(lambda: _count(corral, "failed", 3))
    await workers.stop(worker)
    return ids


async def _count(corral: Corral, state: str, n: int) -> bool:
    return (await corral.queue(QUEUE).counts())[state] == n


@pytest.mark.parametrize("field", FIELDS)
async def test_a_corrupt_job_is_listed_flagged_and_can_be_retried_and_removed(
    serve: Serve, corral: Corral, workers: Workers, field: str
) -> None:
    server = serve(build_app(corral.url), api_keys=API_KEYS)
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        a, b, c = await _failed_jobs(http, corral, workers)
        await write_raw(await corral.backend(), QUEUE, b, field, GARBAGE)
        admin, read = bearer(ADMIN_KEY), bearer(READ_KEY)

        listing = await http.get(BASE, params={"state": "failed"}, headers=admin)
        assert listing.status_code == 200, listing.text
        jobs = {j["id"]: j for j in listing.json()["jobs"]}
        assert set(jobs) == {a, b, c}
        assert jobs[b]["corrupt"] == {field: GARBAGE_TEXT}
        for intact in (jobs[a], jobs[c]):
            assert intact["corrupt"] == {}
            assert intact["errors"][-1]["message"] in ("m0", "m2")
        for path in (f"{BASE}/{b}", f"/api/v1/jobs/{b}", f"{BASE}/{b}/result"):
            shown = await http.get(path, headers=admin)
            assert shown.status_code == 200, (path, shown.text)
            assert shown.json()["corrupt"] == {field: GARBAGE_TEXT}

        # A read key cannot tell which part of unreadable text is secret: it sees the
        # flag, not the text (error entries are shown to read keys anyway).
        as_reader = await http.get(f"{BASE}/{b}", headers=read)
        assert as_reader.status_code == 200
        hidden = GARBAGE_TEXT if field == "errors" else "***"
        assert as_reader.json()["corrupt"] == {field: hidden}

        retried = await http.post(f"{BASE}/{b}/retry", headers=admin)
        assert retried.status_code == 200, retried.text
        assert retried.json()["state"] == "waiting"
        assert (await http.delete(f"{BASE}/{b}", headers=admin)).status_code == 204
        assert (await http.get(f"{BASE}/{b}", headers=admin)).status_code == 404
