"""Schedule actions over HTTP: run now, pause, resume (SQLite and Redis)."""

from __future__ import annotations

import httpx
import pytest

from corral import Corral, JobState
from tests.web.apps import QUEUE, build_app
from tests.web.conftest import ADMIN_KEY, API_KEYS, READ_KEY, WRITE_KEY, Serve, bearer

SCHEDULES = "/api/v1/schedules"


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


@pytest.fixture
async def nightly(corral: Corral) -> Corral:
    await corral.schedules.add("nightly", "web.echo", cron="0 3 * * *", args=["hello"])
    return corral


async def test_run_enqueues_the_job_and_keeps_the_schedule(
    nightly: Corral, client: httpx.AsyncClient
) -> None:
    before = await nightly.schedules.get("nightly")
    response = await client.post(f"{SCHEDULES}/nightly/run")
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["id"].startswith("nightly@now-")
    assert (job["queue"], job["name"], job["args"], job["created"]) == (
        QUEUE, "web.echo", ["hello"], True
    )  # fmt: skip
    assert (await nightly.get_job(job["id"], QUEUE)).state is JobState.WAITING
    assert await nightly.schedules.get("nightly") == before


async def test_pause_then_resume(nightly: Corral, client: httpx.AsyncClient) -> None:
    paused = await client.post(f"{SCHEDULES}/nightly/pause")
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert (body["name"], body["paused"], body["next_run_at"]) == ("nightly", True, None)
    assert (await nightly.schedules.get("nightly")).spec.paused

    resumed = await client.post(f"{SCHEDULES}/nightly/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["paused"] is False
    assert resumed.json()["next_run_at"].endswith("T03:00:00+00:00")
    assert not (await nightly.schedules.get("nightly")).spec.paused


@pytest.mark.parametrize("action", ["run", "pause", "resume"])
async def test_unknown_and_invalid_names(
    nightly: Corral, client: httpx.AsyncClient, action: str
) -> None:
    missing = await client.post(f"{SCHEDULES}/nope/{action}")
    assert missing.status_code == 404
    assert missing.json()["error"] == "no schedule named 'nope'"
    invalid = await client.post(f"{SCHEDULES}/no%20spaces/{action}")
    assert invalid.status_code == 422
    assert "name" in invalid.text


async def test_scopes(nightly: Corral, serve: Serve, url: str) -> None:
    server = serve(build_app(url), api_keys=API_KEYS)
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        run = f"{SCHEDULES}/nightly/run"
        assert (await http.post(run)).status_code == 401
        assert (await http.post(run, headers=bearer(READ_KEY))).status_code == 403
        assert (await http.post(run, headers=bearer(WRITE_KEY))).status_code == 201
        pause = f"{SCHEDULES}/nightly/pause"
        assert (await http.post(pause, headers=bearer(WRITE_KEY))).status_code == 403
        assert (await http.post(pause, headers=bearer(ADMIN_KEY))).status_code == 200
    assert (await nightly.schedules.get("nightly")).spec.paused
