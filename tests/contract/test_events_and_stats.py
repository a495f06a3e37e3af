"""Lifecycle events and queue totals, the same on every backend."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator

import pytest

from corral.backends.base import DURATION_BUCKETS, Backend, Completion, Retention
from tests.contract.conftest import claim_one, enqueue


async def _collect(stream: AsyncIterator[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    async with asyncio.timeout(5):
        async for item in stream:
            seen.append(item)
            if len(seen) == n:
                return seen
    return seen


async def test_events_follow_a_job_through_its_lifecycle(backend: Backend) -> None:
    stream = await backend.events("q")
    collector = asyncio.create_task(_collect(stream, 5))
    await enqueue(backend, "q", "j1")
    job = await claim_one(backend, "q")
    await backend.update("q", job.id, job.token, progress=b"50")
    await backend.fail("q", job.id, job.token, b'{"type":"E"}', 0, Retention())
    job = await claim_one(backend, "q")
    seen = await collector
    assert seen == [
        ("added", "j1"),
        ("active", "j1"),
        ("progress", "j1"),
        ("retrying", "j1"),
        ("active", "j1"),
    ]
    await backend.complete("q", [Completion(job.id, job.token, b"1")], Retention())
    await stream.aclose()


async def test_batches_emit_one_event_per_job(backend: Backend) -> None:
    """Enqueues, claims and completions of several jobs at once give every job its
    own event, and a stale or repeated completion in a batch gives none."""
    stream = await backend.events("q")
    collector = asyncio.create_task(_collect(stream, 8))
    await enqueue(backend, "q", "j1", "j2", "j3")
    jobs, _ = await backend.claim("q", 3, 30_000, "w1")
    assert [j.id for j in jobs] == ["j1", "j2", "j3"]
    j1, j2, j3 = jobs
    done = await backend.complete(
        "q",
        [
            Completion(j1.id, j1.token, b"1"),
            Completion(j2.id, "stale-token", b"2"),
            Completion(j3.id, j3.token, b"3"),
            Completion(j1.id, j1.token, b"again"),
        ],
        Retention(),
    )
    assert done == [True, False, True, False]
    assert await collector == [
        ("added", "j1"),
        ("added", "j2"),
        ("added", "j3"),
        ("active", "j1"),
        ("active", "j2"),
        ("active", "j3"),
        ("completed", "j1"),
        ("completed", "j3"),
    ]
    assert (await backend.get("q", "j1")).result == b"1"  # type: ignore[union-attr]
    assert (await backend.get("q", "j2")).state == "active"  # type: ignore[union-attr]
    await stream.aclose()


async def test_log_lines_emit_one_log_event_per_call(backend: Backend) -> None:
    await enqueue(backend, "q", "j1")
    job = await claim_one(backend, "q")
    stream = await backend.events("q")
    collector = asyncio.create_task(_collect(stream, 3))
    await backend.update("q", job.id, job.token, logs=["one", "two"])
    await backend.update("q", job.id, job.token, progress=b"1", logs=["three"])
    assert not await backend.update("q", job.id, "stale-token", logs=["lost"])
    await backend.complete("q", [Completion(job.id, job.token, b"1")], Retention())
    assert await collector == [("log", "j1"), ("progress", "j1"), ("log", "j1")]
    await stream.aclose()


async def test_events_are_per_queue(backend: Backend) -> None:
    stream = await backend.events("a")
    collector = asyncio.create_task(_collect(stream, 1))
    await enqueue(backend, "b", "other")
    await enqueue(backend, "a", "mine")
    assert await collector == [("added", "mine")]
    await stream.aclose()


async def test_stats_count_outcomes_and_durations(backend: Backend) -> None:
    empty = await backend.stats("q")
    assert (empty.completed, empty.failed, empty.retried) == (0, 0, 0)
    assert len(empty.buckets) == len(DURATION_BUCKETS) + 1

    await enqueue(backend, "q", "a", "b", "c")
    first = await claim_one(backend, "q")
    await backend.fail("q", first.id, first.token, b"{}", 0, Retention())  # retried
    jobs = [await claim_one(backend, "q") for _ in range(3)]
    await asyncio.sleep(0.03)
    done = jobs[:2]
    await backend.complete("q", [Completion(j.id, j.token, b"1") for j in done], Retention())
    last = jobs[2]
    await backend.fail("q", last.id, last.token, b"{}", None, Retention())  # dead-lettered

    stats = await backend.stats("q")
    assert (stats.completed, stats.failed, stats.retried) == (2, 1, 1)
    # Each run took as long as the store's own start and finish times say (whole
    # milliseconds), in the bucket of that duration: a run over 30 ms by our clock.
    runs = []
    for job in done:
        record = await backend.get("q", job.id)
        assert record is not None and record.started_at and record.finished_at
        runs.append((record.finished_at - record.started_at) / 1000)
    assert min(runs) >= 0.03
    assert stats.duration_sum == pytest.approx(sum(runs), abs=0.0021)
    expected = [0] * (len(DURATION_BUCKETS) + 1)
    for seconds in runs:
        expected[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
    assert list(stats.buckets) == expected
