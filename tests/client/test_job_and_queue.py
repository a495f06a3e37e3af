"""Job handles and queue handles through the client API (no worker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from corral import (
    Corral,
    InvalidName,
    InvalidTransition,
    Job,
    JobCancelled,
    JobNotFound,
    JobState,
    ResultTimeout,
    Retention,
    ValidationError,
    WorkerInfo,
)
from tests.client.conftest import EMPTY


def _register(app: Corral) -> object:
    @app.task(name="media.resize", queue="media")
    async def resize(path: str, width: int, *, keep_ratio: bool = True) -> dict[str, int]:
        return {"width": width}

    return resize


# -- Job -------------------------------------------------------------------------------


async def test_job_fields_after_refresh(app: Corral) -> None:
    resize = _register(app)
    before = datetime.now(UTC) - timedelta(seconds=5)
    job = await resize.options(priority=5).enqueue(  # type: ignore[attr-defined]
        "img/ä.png", 640, keep_ratio=False
    )
    fresh = await app.get_job(job.id, "media")
    assert fresh is not job
    assert await fresh.refresh() is fresh
    assert fresh.id == job.id
    assert fresh.queue == "media"
    assert fresh.name == "media.resize"
    assert fresh.state is JobState.WAITING
    assert fresh.args == ["img/ä.png", 640]
    assert fresh.kwargs == {"keep_ratio": False}
    assert fresh.priority == 5
    assert fresh.attempts == 0
    assert fresh.stalls == 0
    assert fresh.progress is None
    assert fresh.return_value is None
    assert fresh.errors == []
    assert fresh.error is None
    assert fresh.logs == []
    assert isinstance(fresh.created_at, datetime)
    assert fresh.created_at.tzinfo is not None
    assert before <= fresh.created_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert fresh.started_at is None
    assert fresh.finished_at is None
    assert fresh.run_at is None


async def test_args_round_trip_nested_json(app: Corral) -> None:
    @app.task(name="data.store")
    async def store(doc: dict, items: list, n: float | None = None) -> None: ...

    doc = {"a": [1, 2, {"b": None}], "ünïcode": "✓", "big": 2**62, "neg": -1.5}
    job = await store.enqueue(doc, [True, False, "x"], n=None)
    await job.refresh()
    assert job.args == [doc, [True, False, "x"]]
    assert job.kwargs == {"n": None}


async def test_to_dict(app: Corral) -> None:
    resize = _register(app)
    job = await resize.enqueue("a.png", 10)  # type: ignore[attr-defined]
    await job.refresh()
    data = job.to_dict()
    assert data["id"] == job.id
    assert data["state"] == "waiting"
    assert data["args"] == ["a.png", 10]
    assert datetime.fromisoformat(data["created_at"]) == job.created_at
    assert data["finished_at"] is None


async def test_unread_handle_says_so(app: Corral) -> None:
    job = Job(app, "media", "never-read")
    with pytest.raises(JobNotFound, match="refresh"):
        _ = job.state


async def test_get_job_without_queue_searches_every_queue(app: Corral) -> None:
    resize = _register(app)
    await app.enqueue("other.thing", [1], queue="aaa")
    job = await resize.enqueue("a.png", 1)  # type: ignore[attr-defined]
    await app.enqueue("other.thing", [2], queue="zzz")
    found = await app.get_job(job.id)
    assert found.queue == "media"
    assert found.args == ["a.png", 1]


async def test_get_job_unknown_id(app: Corral) -> None:
    _register(app)
    await app.enqueue("other.thing", [1], queue="aaa")
    with pytest.raises(JobNotFound, match=r"'missing-id'.*any queue"):
        await app.get_job("missing-id")
    with pytest.raises(JobNotFound, match=r"'missing-id'.*'aaa'"):
        await app.get_job("missing-id", "aaa")
    with pytest.raises(InvalidName):
        await app.get_job("bad id")


async def test_get_job_in_the_wrong_queue(app: Corral) -> None:
    job = await app.enqueue("x.y", [], queue="one")
    await app.enqueue("x.y", [], queue="two")
    with pytest.raises(JobNotFound):
        await app.get_job(job.id, "two")


async def test_refresh_of_a_removed_job(app: Corral) -> None:
    resize = _register(app)
    job = await resize.enqueue("a.png", 1)  # type: ignore[attr-defined]
    assert await job.remove() is True
    assert await job.remove() is False
    with pytest.raises(JobNotFound):
        await job.refresh()
    assert (await app.queue("media").counts()) == EMPTY


async def test_cancel_retry_promote(app: Corral) -> None:
    resize = _register(app)
    job = await resize.options(delay=3600).enqueue("a.png", 1)  # type: ignore[attr-defined]
    assert await job.retry() is False  # not failed or cancelled
    assert await job.promote() is True
    assert await job.promote() is False  # no longer delayed
    assert await job.cancel() is JobState.CANCELLED
    assert await job.cancel() is JobState.CANCELLED  # already cancelled: unchanged
    await job.refresh()
    assert job.state is JobState.CANCELLED
    assert job.finished_at is not None
    counts = await app.queue("media").counts()
    assert (counts["waiting"], counts["cancelled"]) == (0, 1)
    assert await job.retry() is True
    await job.refresh()
    assert job.state is JobState.WAITING
    assert (await app.queue("media").counts())["waiting"] == 1


async def test_cancel_unknown_job(app: Corral) -> None:
    with pytest.raises(JobNotFound):
        await Job(app, "media", "nope").cancel()


async def test_result_of_a_cancelled_job_and_a_timeout(app: Corral) -> None:
    resize = _register(app)
    job = await resize.enqueue("a.png", 1)  # type: ignore[attr-defined]
    with pytest.raises(ResultTimeout):
        await job.result(timeout=0.05)
    await job.cancel()
    with pytest.raises(JobCancelled):
        await job.result(timeout=1)


# -- Queue -----------------------------------------------------------------------------


async def test_queue_handle_validates_its_name(app: Corral) -> None:
    with pytest.raises(InvalidName):
        app.queue("bad name")


async def test_counts_of_an_unused_queue(app: Corral) -> None:
    assert await app.queue("nothing-here").counts() == EMPTY


async def test_pause_and_resume(app: Corral) -> None:
    resize = _register(app)
    queue = app.queue("media")
    await queue.pause()
    assert (await queue.counts())["paused"] == 1
    # enqueueing still works while paused
    await resize.enqueue("a.png", 1)  # type: ignore[attr-defined]
    assert (await queue.counts())["waiting"] == 1
    # and nothing can be claimed
    backend = await app.backend()
    claimed, _ = await backend.claim("media", 10, 1000, "test")
    assert claimed == []
    await queue.resume()
    assert (await queue.counts())["paused"] == 0
    claimed, _ = await backend.claim("media", 10, 1000, "test")
    assert len(claimed) == 1


async def test_jobs_pagination_in_claim_order(app: Corral) -> None:
    resize = _register(app)
    jobs = [await resize.enqueue("a.png", n) for n in range(25)]  # type: ignore[attr-defined]
    queue = app.queue("media")
    pages = [await queue.jobs("waiting", offset=o, limit=10) for o in (0, 10, 20, 30)]
    assert [len(page) for page in pages] == [10, 10, 5, 0]
    assert [j.id for page in pages for j in page] == [j.id for j in jobs]
    # the handles come back readable
    assert pages[0][3].args == ["a.png", 3]


async def test_jobs_waiting_order_follows_priority(app: Corral) -> None:
    resize = _register(app)
    low = await resize.options(priority=-5).enqueue("low.png", 1)  # type: ignore[attr-defined]
    mid = await resize.enqueue("mid.png", 1)  # type: ignore[attr-defined]
    high = await resize.options(priority=50).enqueue("high.png", 1)  # type: ignore[attr-defined]
    page = await app.queue("media").jobs(limit=10)
    assert [j.id for j in page] == [high.id, mid.id, low.id]


async def test_jobs_by_state(app: Corral) -> None:
    resize = _register(app)
    await resize.enqueue("a.png", 1)  # type: ignore[attr-defined]
    later = await resize.options(delay=600).enqueue("b.png", 2)  # type: ignore[attr-defined]
    queue = app.queue("media")
    assert [j.id for j in await queue.jobs(JobState.DELAYED)] == [later.id]
    assert [j.id for j in await queue.jobs("delayed")] == [later.id]
    assert await queue.jobs("completed") == []


async def test_jobs_argument_checks(app: Corral) -> None:
    queue = app.queue("media")
    with pytest.raises(ValidationError, match="unknown job state 'done'"):
        await queue.jobs("done")
    with pytest.raises(ValidationError, match="limit"):
        await queue.jobs(limit=0)
    with pytest.raises(ValidationError, match="offset"):
        await queue.jobs(offset=-1)


async def test_drain(app: Corral) -> None:
    resize = _register(app)
    for n in range(5):
        await resize.enqueue("a.png", n)  # type: ignore[attr-defined]
    delayed = await resize.options(delay=600).enqueue("b.png", 9)  # type: ignore[attr-defined]
    queue = app.queue("media")
    assert await queue.drain() == 5
    counts = await queue.counts()
    assert (counts["waiting"], counts["delayed"]) == (0, 1)
    assert (await delayed.refresh()).state is JobState.DELAYED
    assert await queue.drain(delayed=True) == 1
    assert await queue.counts() == EMPTY
    with pytest.raises(JobNotFound):
        await delayed.refresh()


async def test_cancel_all_clean_and_retry_all(app: Corral) -> None:
    resize = _register(app)
    jobs = [await resize.enqueue("a.png", n) for n in range(3)]  # type: ignore[attr-defined]
    await resize.options(delay=600).enqueue("b.png", 9)  # type: ignore[attr-defined]
    queue = app.queue("media")
    assert await queue.cancel_all() == 4
    counts = await queue.counts()
    assert (counts["waiting"], counts["delayed"], counts["cancelled"]) == (0, 0, 4)
    # cancelled jobs are listed newest first
    listed = await queue.jobs("cancelled", limit=10)
    assert len(listed) == 4
    assert await queue.retry_all("cancelled") == 4
    assert (await queue.counts())["waiting"] == 4
    assert await queue.cancel_all() == 4
    # clean: nothing is older than an hour; everything is older than 0 s
    assert await queue.clean("cancelled", older_than=3600) == 0
    assert await queue.clean("cancelled", older_than=timedelta(0), limit=1) == 1
    assert await queue.clean("cancelled") == 3
    assert await queue.counts() == EMPTY
    with pytest.raises(JobNotFound):
        await jobs[0].refresh()


async def test_clean_and_retry_all_argument_checks(app: Corral) -> None:
    queue = app.queue("media")
    with pytest.raises(InvalidTransition):
        await queue.clean("waiting")
    with pytest.raises(ValidationError):
        await queue.clean(older_than=-1)
    with pytest.raises(ValidationError):
        await queue.clean(limit=0)
    with pytest.raises(ValidationError, match="retry_all"):
        await queue.retry_all("completed")
    assert await queue.retry_all() == 0


async def test_cancelled_jobs_are_kept_like_completed_ones(redis_url: str) -> None:
    # The app's completed retention; a task's own completed retention for its jobs.
    app = Corral(redis_url, completed=Retention(count=2))
    try:

        @app.task(name="t.kept", queue="kept", completed=Retention(count=1))
        def kept() -> None: ...

        plain = [await app.enqueue("t.other", queue="plain") for _ in range(4)]
        for job in plain:
            assert await job.cancel() is JobState.CANCELLED
        assert (await app.queue("plain").counts())["cancelled"] == 2
        assert [j.id for j in await app.queue("plain").jobs("cancelled")] == [
            plain[3].id,
            plain[2].id,
        ]
        for _ in range(3):
            await kept.enqueue()  # type: ignore[attr-defined]
        assert await app.queue("kept").cancel_all() == 3
        assert (await app.queue("kept").counts())["cancelled"] == 1
    finally:
        await app.close()


async def test_health_judges_every_queue_in_one_call(app: Corral) -> None:
    resize = _register(app)

    @app.task(name="mail.send", queue="mail")
    async def send(to: str) -> None: ...

    @app.task(name="etl.load", queue="etl")
    async def load() -> None: ...

    await resize.enqueue("a.png", 1)  # type: ignore[attr-defined]
    await send.enqueue("a@b.c")
    await send.options(delay=3600).enqueue("b@c.d")
    await load.enqueue()
    await app.queue("etl").pause()
    backend = await app.backend()
    now = int(datetime.now(UTC).timestamp() * 1000)
    await backend.register_worker(
        WorkerInfo("w1", "host", 1, ["mail", "idle"], 4, now, now), 60_000
    )

    rows = {h.name: h for h in await app.health()}

    assert list(rows) == ["etl", "idle", "mail", "media"]
    assert rows["idle"].to_dict() == {
        "name": "idle",
        **EMPTY,
        "paused": False,
        "workers": 1,
        "healthy": True,
        "reason": "ok",
    }
    assert rows["mail"].to_dict() == {
        "name": "mail",
        **{**EMPTY, "waiting": 1, "delayed": 1},
        "paused": False,
        "workers": 1,
        "healthy": True,
        "reason": "ok",
    }
    assert (rows["etl"].healthy, rows["etl"].reason) == (False, "paused with jobs waiting")
    assert rows["media"].waiting == 1 and rows["media"].workers == 0
    assert not rows["media"].healthy and "no live worker" in rows["media"].reason
