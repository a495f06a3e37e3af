"""Job.blockers / blockers_sync through the client API, on each backend."""

from __future__ import annotations

import pytest

from corral import Corral, JobNotFound
from corral.blockers import Blocker


def _register(app: Corral) -> object:
    @app.task(name="mail.send", queue="emails")
    async def send(to: str) -> None:
        return None

    return send


async def test_blockers_of_a_job_in_a_paused_queue_without_workers(app: Corral) -> None:
    send = _register(app)
    job = await send.enqueue("a@b.c")  # type: ignore[attr-defined]
    await app.queue("emails").pause()
    assert await job.blockers() == [
        Blocker("paused", "the queue 'emails' is paused"),
        Blocker("no_worker", "no live worker listens on queue 'emails'"),
    ]


async def test_blockers_of_a_removed_job_raise_job_not_found(app: Corral) -> None:
    send = _register(app)
    job = await send.enqueue("a@b.c")  # type: ignore[attr-defined]
    assert await job.remove()
    with pytest.raises(JobNotFound, match=r"no job .* in queue 'emails'"):
        await job.blockers()


def test_blockers_sync(sync_app: Corral) -> None:
    send = _register(sync_app)
    first = send.enqueue_sync("a@b.c")  # type: ignore[attr-defined]
    second = send.enqueue_sync("d@e.f")  # type: ignore[attr-defined]
    assert [b.kind for b in second.blockers_sync()] == ["no_worker", "position"]
    assert second.blockers_sync()[1].message == "1 job is ahead of it in line"
    assert [b.kind for b in first.blockers_sync()] == ["no_worker"]
