"""Keyset paging (``page_jobs``) and bounded scans (``scan_jobs``) on every backend.

The promise: paging from the first page to the last reads every job that stays in the
state exactly once, in the listing order, however other jobs move in between.
"""

from __future__ import annotations

from collections import Counter

import pytest

from corral.backends.base import Backend, Completion, JobRecord, JobState, Position, Retention
from corral.errors import ValidationError
from tests.contract.conftest import enqueue, new_job

Q = "pg"
KEEP = Retention()


async def _all_pages(
    backend: Backend, state: JobState, limit: int, between: list[object] | None = None
) -> list[list[str]]:
    pages: list[list[str]] = []
    after: Position | None = None
    while True:
        page = await backend.page_jobs(Q, state, after, limit)
        assert all(j.state is state for j in page.jobs)
        pages.append([j.id for j in page.jobs])
        assert len(page.jobs) <= limit
        if page.next is None:
            return pages
        assert page.next == page.positions[-1]
        after = page.next


async def _mixed_line(backend: Backend) -> None:
    """Waiting jobs in all three places a line is kept: default priority, other
    priorities, groups."""
    await enqueue(backend, Q, *[f"p0-{i:02}" for i in range(12)])
    await enqueue(backend, Q, *[f"hi-{i}" for i in range(4)], priority=5)
    await enqueue(backend, Q, *[f"lo-{i}" for i in range(3)], priority=-2)
    await enqueue(backend, Q, *[f"ga-{i}" for i in range(4)], group="a")
    await enqueue(backend, Q, *[f"gb-{i}" for i in range(3)], group="b", priority=5)


async def _finish(backend: Backend, n: int, *, failed: bool = False) -> list[str]:
    jobs, _ = await backend.claim(Q, n, 30_000, "w")
    for job in jobs:
        if failed:
            assert await backend.fail(Q, job.id, job.token, b'{"message": "boom"}', None, KEEP)
        else:
            assert await backend.complete(Q, [Completion(job.id, job.token, b"1")], KEEP)
    return [job.id for job in jobs]


@pytest.mark.parametrize("limit", [1, 4, 7, 26, 100])
async def test_waiting_pages_follow_the_claim_order_exactly_once(
    backend: Backend, limit: int
) -> None:
    await _mixed_line(backend)
    whole = [r.id for r in await backend.list_jobs(Q, JobState.WAITING, 0, 1000)]
    pages = await _all_pages(backend, JobState.WAITING, limit)
    assert [i for page in pages for i in page] == whole
    assert len(whole) == 26
    assert all(len(p) == limit for p in pages[:-1])


async def test_delayed_and_finished_pages_cover_the_state_in_listing_order(
    backend: Backend,
) -> None:
    await enqueue(backend, Q, *[f"d{i:02}" for i in range(9)], delay_ms=60_000)
    await enqueue(backend, Q, *[f"e{i:02}" for i in range(5)], delay_ms=120_000)
    await enqueue(backend, Q, *[f"j{i:02}" for i in range(11)])
    await _finish(backend, 6)
    await _finish(backend, 5, failed=True)
    for state in (JobState.DELAYED, JobState.COMPLETED, JobState.FAILED):
        whole = [r.id for r in await backend.list_jobs(Q, state, 0, 1000)]
        assert whole
        for limit in (1, 3, 50):
            pages = await _all_pages(backend, state, limit)
            assert [i for page in pages for i in page] == whole, (state, limit)


async def test_jobs_moving_between_page_reads_neither_skip_nor_repeat_the_others(
    backend: Backend,
) -> None:
    await _mixed_line(backend)
    before = {r.id for r in await backend.list_jobs(Q, JobState.WAITING, 0, 1000)}
    seen: list[str] = []
    left: set[str] = set()
    after: Position | None = None
    step = 0
    while True:
        page = await backend.page_jobs(Q, JobState.WAITING, after, 5)
        seen += [j.id for j in page.jobs]
        if page.next is None:
            break
        after = page.next
        step += 1
        # Between reads: workers claim from the head, new jobs join, a job is
        # cancelled, and the page's own last row leaves the line.
        claimed, _ = await backend.claim(Q, 2, 30_000, "w")
        left |= {j.id for j in claimed}
        await enqueue(backend, Q, f"new-{step}")
        await enqueue(backend, Q, f"newhi-{step}", priority=9)
        last = page.jobs[-1].id
        if step % 2 and await backend.cancel(Q, last) is JobState.CANCELLED:
            left.add(last)
    counts = Counter(seen)
    assert [i for i, n in counts.items() if n > 1] == []
    stayed = before - left
    assert stayed <= set(seen), sorted(stayed - set(seen))


async def test_finished_pages_hold_steady_while_more_jobs_finish(backend: Backend) -> None:
    await enqueue(backend, Q, *[f"j{i:02}" for i in range(30)])
    first = await _finish(backend, 12)
    seen: list[str] = []
    after: Position | None = None
    while True:
        page = await backend.page_jobs(Q, JobState.COMPLETED, after, 5)
        seen += [j.id for j in page.jobs]
        if page.next is None:
            break
        after = page.next
        await _finish(backend, 2)  # newer: they sort before the pages already read
    assert sorted(seen) == sorted(first)


async def test_an_empty_state_is_one_empty_page(backend: Backend) -> None:
    for state in JobState:
        page = await backend.page_jobs(Q, state, None, 10)
        assert (page.jobs, page.next) == ([], None)


async def test_a_position_of_the_wrong_shape_is_refused(backend: Backend) -> None:
    await enqueue(backend, Q, "a", "b")
    waiting = await backend.page_jobs(Q, JobState.WAITING, None, 1)
    assert waiting.next is not None
    with pytest.raises(ValidationError, match="cursor"):
        await backend.page_jobs(Q, JobState.DELAYED, waiting.next, 1)
    with pytest.raises(ValidationError, match="cursor"):
        await backend.page_jobs(Q, JobState.WAITING, ("x", 1), 1)


def _every_third(job: JobRecord) -> bool:
    return int(job.id[1:]) % 3 == 0


async def test_a_scan_reads_at_most_its_bound_and_resumes_where_it_stopped(
    backend: Backend,
) -> None:
    await backend.enqueue(Q, [new_job(f"j{i:02}") for i in range(40)])
    first = await backend.scan_jobs(Q, JobState.WAITING, None, 100, 10, _every_third)
    assert first.scanned == 10
    assert [j.id for j in first.jobs] == ["j00", "j03", "j06", "j09"]
    assert first.resume is not None
    found = [j.id for j in first.jobs]
    resume: Position | None = first.resume
    scans = 1
    while resume is not None:
        more = await backend.scan_jobs(Q, JobState.WAITING, resume, 100, 10, _every_third)
        assert more.scanned <= 10
        found += [j.id for j in more.jobs]
        resume = more.resume
        scans += 1
    assert found == [f"j{i:02}" for i in range(0, 40, 3)]
    assert scans == 4


async def test_a_scan_stops_at_its_limit_and_resumes_after_the_last_match(
    backend: Backend,
) -> None:
    await backend.enqueue(Q, [new_job(f"j{i:02}") for i in range(20)])
    first = await backend.scan_jobs(Q, JobState.WAITING, None, 2, 1000, _every_third)
    assert [j.id for j in first.jobs] == ["j00", "j03"]
    assert first.scanned == 4
    rest = await backend.scan_jobs(Q, JobState.WAITING, first.resume, 100, 1000, _every_third)
    assert [j.id for j in rest.jobs] == ["j06", "j09", "j12", "j15", "j18"]
    assert (rest.resume, rest.scanned) == (None, 16)
