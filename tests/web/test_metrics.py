"""/metrics in the Prometheus text format, after real jobs ran (SQLite and Redis)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.web.apps import QUEUE
from tests.web.conftest import Workers, wait_until


def _families(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """{family name: {(sample name, sorted labels): value}}"""
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in text_string_to_metric_families(text):
        samples = out.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.fixture
def url(backend_url: str) -> str:
    return backend_url


async def test_metrics_after_jobs_ran(client: httpx.AsyncClient, workers: Workers) -> None:
    empty = await client.get("/metrics")
    assert empty.status_code == 200
    assert empty.headers["content-type"].startswith("text/plain")
    assert "corral_workers" in _families(empty.text)

    workers.start()
    for i in range(3):
        response = await client.post("/api/v1/jobs", json={"task": "web.echo", "args": [i]})
        assert response.status_code == 201
    failed = await client.post("/api/v1/jobs", json={"task": "web.fail"})
    assert failed.status_code == 201

    async def all_done() -> bool:
        queue = (await client.get(f"/api/v1/queues/{QUEUE}")).json()
        return queue["completed"] == 3 and queue["failed"] == 1

    await wait_until(all_done)
    await client.post("/api/v1/jobs", json={"task": "web.echo", "delay": 60})

    response = await client.get("/metrics")
    assert response.status_code == 200
    metrics = _families(response.text)

    jobs = metrics["corral_jobs"]
    q = ("queue", QUEUE)
    assert jobs[("corral_jobs", (q, ("state", "completed")))] == 3
    assert jobs[("corral_jobs", (q, ("state", "failed")))] == 1
    assert jobs[("corral_jobs", (q, ("state", "delayed")))] == 1
    assert jobs[("corral_jobs", (q, ("state", "waiting")))] == 0
    states = {dict(labels)["state"] for (_, labels) in jobs}
    assert states == {
        "waiting",
        "delayed",
        "active",
        "completed",
        "failed",
        "cancelled",
        "blocked",
    }

    assert metrics["corral_jobs_completed"][("corral_jobs_completed_total", (q,))] == 3
    assert metrics["corral_jobs_failed"][("corral_jobs_failed_total", (q,))] == 1
    assert metrics["corral_queue_paused"][("corral_queue_paused", (q,))] == 0

    duration = metrics["corral_job_duration_seconds"]
    assert duration[("corral_job_duration_seconds_count", (q,))] == 3
    assert duration[("corral_job_duration_seconds_bucket", (("le", "+Inf"), q))] == 3
    assert duration[("corral_job_duration_seconds_sum", (q,))] >= 0
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in duration.items()
        if name.endswith("_bucket")
    )
    counts = [value for _, value in buckets]
    assert counts == sorted(counts), "histogram buckets must be cumulative"

    assert metrics["corral_workers"][("corral_workers", ())] == 1
