"""The outcome history (Backend.history), the same on every backend."""

from __future__ import annotations

import asyncio
import bisect

import pytest

from corral.backends.base import (
    DURATION_BUCKETS,
    HISTORY_STEPS,
    Backend,
    Completion,
    HistoryWindow,
    Retention,
)
from tests.contract.conftest import claim_one, enqueue

KEEP = Retention()
MINUTE, QUARTER = 60_000, 900_000


def _slot_of(window: HistoryWindow, at_ms: int) -> int:
    return at_ms // window.step - window.start // window.step


async def _finished_at(backend: Backend, queue: str, job_id: str) -> int:
    record = await backend.get(queue, job_id)
    assert record is not None and record.finished_at is not None
    return record.finished_at


async def test_an_unused_queue_has_a_full_window_of_zeros_ending_now(backend: Backend) -> None:
    for step, count in HISTORY_STEPS.items():
        before = await backend.time_ms()
        window = await backend.history(["nothing", "else"], step, count)
        after = await backend.time_ms()
        assert window.step == step and window.start % step == 0
        # The last slot holds the store's now (read between the two clock readings).
        last_start = window.start + (count - 1) * step
        assert before // step * step <= last_start <= after // step * step
        assert set(window.slots) == {"nothing", "else"}
        zero = (0,) * (len(DURATION_BUCKETS) + 2)
        assert window.slots["nothing"] == [zero] * count


async def test_outcomes_are_counted_in_their_slot_by_kind(backend: Backend) -> None:
    await enqueue(backend, "q", "a", "b", "c", "d", "e")
    a, b, c, d = [await claim_one(backend, "q") for _ in range(4)]
    await asyncio.sleep(0.03)  # a and b run > 25 ms: the bucket is the store's duration
    done = await backend.complete(
        "q",
        [Completion(a.id, a.token, b"1"), Completion(b.id, b.token, b"2")],
        KEEP,
    )
    assert done == [True, True]
    # Not counted: a retry, and a completion fenced off by a stale token.
    assert await backend.fail("q", c.id, c.token, b"{}", 0, KEEP)
    assert await backend.complete("q", [Completion(c.id, "stale", b"3")], KEEP) == [False]
    assert await backend.fail("q", d.id, d.token, b"{}", None, KEEP)  # failed for good

    for step, count in HISTORY_STEPS.items():
        window = await backend.history(["q", "other"], step, count)
        expected = [[0] * (len(DURATION_BUCKETS) + 2) for _ in range(count)]
        for job in (a, b):
            record = await backend.get("q", job.id)
            assert record and record.started_at and record.finished_at
            seconds = (record.finished_at - record.started_at) / 1000
            assert seconds >= 0.03
            bucket = bisect.bisect_left(DURATION_BUCKETS, seconds)
            expected[_slot_of(window, record.finished_at)][bucket + 1] += 1
        expected[_slot_of(window, await _finished_at(backend, "q", d.id))][0] += 1
        assert window.slots["q"] == [tuple(row) for row in expected]
        assert not any(any(slot) for slot in window.slots["other"])


async def test_a_job_failed_by_the_reaper_counts_as_failed(backend: Backend) -> None:
    await enqueue(backend, "q", "j")
    await claim_one(backend, "q", lease_ms=1)
    async with asyncio.timeout(2):
        while not (await backend.reap_stalled("q", max_stalls=0))[1]:
            await asyncio.sleep(0.005)
    window = await backend.history(["q"], MINUTE, 60)
    slot = _slot_of(window, await _finished_at(backend, "q", "j"))
    assert [s[0] for s in window.slots["q"]] == [int(i == slot) for i in range(60)]


async def test_a_batch_counts_every_job(backend: Backend) -> None:
    ids = [f"j{i}" for i in range(20)]
    await enqueue(backend, "q", *ids)
    jobs, _ = await backend.claim("q", 20, 30_000, "w1")
    await backend.complete("q", [Completion(j.id, j.token, b"1") for j in jobs], KEEP)
    window = await backend.history(["q"], QUARTER, 96)
    assert sum(sum(slot[1:]) for slot in window.slots["q"]) == 20


@pytest.mark.parametrize(
    ("step", "count"), [(30_000, 10), (MINUTE, 0), (MINUTE, 61), (QUARTER, 97), (QUARTER, -1)]
)
async def test_a_window_the_store_does_not_keep_is_refused(
    backend: Backend, step: int, count: int
) -> None:
    with pytest.raises(ValueError, match=r"history (step|count)"):
        await backend.history(["q"], step, count)
