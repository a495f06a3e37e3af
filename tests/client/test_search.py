"""Queue.page / search / bulk: cursors, filters, the scan bound, bulk on ids and on a
filter, and bad input (no worker: jobs are failed through the backend directly)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest

import corral.bulk
from corral import Corral, JobState, Retention, ValidationError
from corral.search import JobFilter, SearchPage

Q = "mail"


async def _fail(app: Corral, n: int, message: str) -> list[str]:
    backend = await app.backend()
    jobs, _ = await backend.claim(Q, n, 30_000, "w")
    for job in jobs:
        error = orjson.dumps({"type": "RuntimeError", "message": message})
        assert await backend.fail(Q, job.id, job.token, error, None, Retention())
    return [job.id for job in jobs]


async def _enqueue(app: Corral, task: str, *args: object, **options: object) -> str:
    job = await app.enqueue(task, list(args), queue=Q, **options)  # type: ignore[arg-type]
    return job.id


async def test_pages_walk_a_state_with_cursors(app: Corral) -> None:
    ids = [await _enqueue(app, "emails.send", i) for i in range(7)]
    queue = app.queue(Q)
    seen: list[str] = []
    cursor = None
    while True:
        page = await queue.page("waiting", cursor=cursor, limit=3)
        seen += [job.id for job in page.jobs]
        assert all(job.state is JobState.WAITING for job in page.jobs)
        if page.next_cursor is None:
            break
        assert page.next_cursor.replace("-", "").replace("_", "").isalnum()  # url-safe
        cursor = page.next_cursor
    assert seen == ids


def test_the_blocking_twins(sync_app: Corral) -> None:
    for i in range(3):
        sync_app.enqueue_sync("t.x", [i], queue=Q, delay=600)
    queue = sync_app.queue(Q)
    ids = [j.id for j in queue.jobs_sync("delayed")]
    page = queue.page_sync(JobState.DELAYED, limit=2)
    assert [j.id for j in page.jobs] == ids[:2] and page.next_cursor
    rest = queue.page_sync("delayed", cursor=page.next_cursor)
    assert [j.id for j in rest.jobs] == ids[2:] and rest.next_cursor is None
    found = queue.search_sync(JobFilter("delayed", text="[1]"))
    assert [j.args for j in found.jobs] == [[1]]
    result = queue.bulk_sync("promote", filter=JobFilter("delayed"))
    assert (result.matched, result.changed, result.skipped) == (3, 3, 0)


async def test_search_filters_by_task_group_text_error_time_and_id(app: Corral) -> None:
    a = await _enqueue(app, "emails.send", "ann@example.com")
    b = await _enqueue(app, "emails.send", "bob@example.com", group="acme")
    c = await _enqueue(app, "reports.build", "Quarterly")
    queue = app.queue(Q)

    async def found(**criteria: object) -> list[str]:
        page = await queue.search(JobFilter("waiting", **criteria))  # type: ignore[arg-type]
        assert page.exhausted and page.next_cursor is None
        return sorted(j.id for j in page.jobs)

    assert await found(task="emails.send") == sorted([a, b])
    assert await found(task="emails.*") == sorted([a, b])
    assert await found(task="*.build") == [c]
    assert await found(group="acme") == [b]
    assert await found(text="BOB@") == [b]
    assert await found(text="quarterly", task="reports.build") == [c]
    assert await found(text="nobody") == []
    assert await found(job_id=c) == [c]
    assert await found(job_id=c, task="emails.send") == []
    now = datetime.now(UTC)
    assert await found(since=now - timedelta(minutes=5)) == sorted([a, b, c])
    assert await found(until=now - timedelta(minutes=5)) == []

    failed = await _fail(app, 2, "SMTP timeout talking to mx1")
    hits = await queue.search(JobFilter("failed", error="smtp TIMEOUT"))
    assert sorted(j.id for j in hits.jobs) == sorted(failed)
    assert (await queue.search(JobFilter("failed", error="refused"))).jobs == []


async def test_a_search_reads_at_most_scan_jobs_and_resumes(app: Corral) -> None:
    ids = [await _enqueue(app, "t.even" if i % 2 else "t.odd", i) for i in range(30)]
    queue = app.queue(Q)
    flt = JobFilter("waiting", task="t.even")
    page: SearchPage = await queue.search(flt, scan=8)
    assert (page.scanned, page.bound, page.exhausted) == (8, 8, False)
    found = [j.id for j in page.jobs]
    assert found == ids[1:8:2]
    while page.next_cursor is not None:
        page = await queue.search(flt, cursor=page.next_cursor, scan=8)
        assert page.scanned <= 8
        found += [j.id for j in page.jobs]
    assert page.exhausted
    assert found == ids[1::2]
    assert [j.id for j in (await queue.search(flt, limit=2)).jobs] == ids[1:4:2]


async def test_bad_cursors_and_bounds_are_refused_with_the_field_named(app: Corral) -> None:
    await _enqueue(app, "t.x")
    await _enqueue(app, "t.x")
    queue = app.queue(Q)
    good = (await queue.page("waiting", limit=1)).next_cursor
    assert good is not None
    huge = base64.urlsafe_b64encode(json.dumps([1, "waiting", [2**70, 0, 0, "x"]]).encode())
    for bad in ("garbage", "", "%%%", good[:-3], good + "AAAA", "W1siYSJdXQ", huge.decode()):
        with pytest.raises(ValidationError, match="cursor"):
            await queue.page("waiting", cursor=bad)
    with pytest.raises(ValidationError, match="cursor is for 'waiting' jobs"):
        await queue.page("failed", cursor=good)
    with pytest.raises(ValidationError, match="limit"):
        await queue.page("waiting", limit=0)
    with pytest.raises(ValidationError, match="scan"):
        await queue.search(JobFilter("waiting"), scan=10**9)
    with pytest.raises(ValidationError, match="state"):
        await queue.page("finished")


@pytest.mark.parametrize(
    ("criteria", "field"),
    [
        ({"state": "done"}, "state"),
        ({"state": "waiting", "task": ""}, "task"),
        ({"state": "waiting", "group": 5}, "group"),
        ({"state": "waiting", "text": "x" * 201}, "text"),
        ({"state": "waiting", "since": "yesterday"}, "since"),
        ({"state": "waiting", "until": 17}, "until"),
        ({"state": "waiting", "job_id": ""}, "job_id"),
        (
            {"state": "waiting", "since": datetime(2030, 1, 1), "until": datetime(2020, 1, 1)},
            "since",
        ),
    ],
)
def test_a_filter_names_the_field_it_refuses(criteria: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        JobFilter(**criteria)  # type: ignore[arg-type]


async def test_bulk_on_ids_acts_on_the_jobs_it_applies_to(app: Corral) -> None:
    waiting = [await _enqueue(app, "t.x", i) for i in range(4)]
    delayed = [await _enqueue(app, "t.x", i, delay=600) for i in range(3)]
    queue = app.queue(Q)
    result = await queue.bulk("promote", ids=[*delayed, waiting[0], "no-such-job"])
    assert (result.matched, result.changed, result.skipped) == (4, 3, 1)
    assert (await queue.counts())["waiting"] == 7
    result = await queue.bulk("cancel", ids=waiting[:2])
    assert (result.matched, result.changed, result.skipped) == (2, 2, 0)
    result = await queue.bulk("retry", ids=waiting)
    assert (result.matched, result.changed, result.skipped) == (4, 2, 2)
    result = await queue.bulk("remove", ids=delayed)
    assert (result.matched, result.changed) == (3, 3)
    assert (await queue.counts())["waiting"] == 4


async def test_bulk_on_a_filter_walks_every_match_and_reports_progress(
    app: Corral, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corral.bulk, "_SCAN", 400)  # three steps for 1,200 jobs

    @app.task(name="t.keep", queue=Q)
    def keep(i: int) -> None: ...

    @app.task(name="t.drop", queue=Q)
    def drop(i: int) -> None: ...

    await app.enqueue_many([(drop if i % 4 == 0 else keep).call(i) for i in range(1200)])
    queue = app.queue(Q)
    calls: list[tuple[int, int]] = []
    result = await queue.bulk(
        "cancel",
        filter=JobFilter("waiting", task="t.drop"),
        progress=lambda done, matched: calls.append((done, matched)),
    )
    assert (result.matched, result.changed, result.skipped) == (300, 300, 0)
    counts = await queue.counts()
    assert (counts["waiting"], counts["cancelled"]) == (900, 300)
    assert calls == [(400, 100), (800, 200), (1200, 300)]
    again = await queue.bulk("retry", filter=JobFilter("cancelled"))
    assert (again.matched, again.changed) == (300, 300)


async def test_bulk_refuses_a_request_it_cannot_take(app: Corral) -> None:
    queue = app.queue(Q)
    with pytest.raises(ValidationError, match="action"):
        await queue.bulk("explode", ids=["a"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="either ids or filter"):
        await queue.bulk("retry")
    with pytest.raises(ValidationError, match=r"filter\.state"):
        await queue.bulk("retry", filter=JobFilter("waiting"))
    with pytest.raises(ValidationError, match="ids"):
        await queue.bulk("remove", ids=[""])
    with pytest.raises(ValidationError, match="ids"):
        await queue.bulk("remove", ids="abc")
