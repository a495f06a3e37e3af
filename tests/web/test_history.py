"""Queue history over HTTP (SQLite and Redis)."""

from __future__ import annotations

import httpx
import pytest

from corral import Corral
from tests.web.apps import QUEUE
from tests.web.conftest import Workers, wait_until

HISTORY = f"/api/v1/queues/{QUEUE}/history"


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


async def test_history_counts_what_workers_did(
    client: httpx.AsyncClient, corral: Corral, workers: Workers
) -> None:
    for task, body in [("web.echo", {"args": [1]})] * 3 + [("web.fail", {})]:
        response = await client.post("/api/v1/jobs", json={"task": task, **body})
        assert response.status_code == 201, response.text
    workers.start()

    async def finished() -> bool:
        counts = await corral.queue(QUEUE).counts()
        return counts["completed"] == 3 and counts["failed"] == 1

    await wait_until(finished)
    for span, points, step in [("hour", 60, 60), ("day", 96, 900)]:
        response = await client.get(HISTORY, params={"span": span})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["queue"], body["span"], body["step_seconds"]) == (QUEUE, span, step)
        assert len(body["points"]) == points
        times = [p["ts"] for p in body["points"]]
        assert times == [times[0] + i * step * 1000 for i in range(points)]
        assert body["totals"]["completed"] == 3 and body["totals"]["failed"] == 1
        assert sum(p["completed"] for p in body["points"]) == 3
        assert sum(p["failed"] for p in body["points"]) == 1
        # Echo jobs run in well under the first bucket bound (5 ms) on an idle worker;
        # the p95 is interpolated inside the bucket the runs fell in.
        assert 0 < body["totals"]["p95_ms"] <= 3_600_000
    # Every queue together, and each queue by name, from one read.
    whole = await corral.history(None, "day")
    assert (whole.queue, whole.completed, whole.failed) == (None, 3, 1)
    each = await corral.histories("hour")
    assert list(each) == await corral.queues()
    assert (each[QUEUE].queue, each[QUEUE].completed, each[QUEUE].failed) == (QUEUE, 3, 1)
    default = await client.get(HISTORY)
    assert default.json()["span"] == "hour"


async def test_a_bad_span_or_queue_is_named(client: httpx.AsyncClient) -> None:
    response = await client.get(HISTORY, params={"span": "week"})
    assert response.status_code == 422
    assert "span" in response.json()["error"] and "'hour' or 'day'" in response.json()["error"]
    response = await client.get("/api/v1/queues/bad%20name/history")
    assert response.status_code == 422
    assert "queue" in response.json()["error"]
