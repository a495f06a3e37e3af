"""``corral pause|resume|clean|remove|promote`` run as a user would, on both stores."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from corral import Corral, JobState
from corral.backends.base import Completion, Retention
from corral.errors import JobNotFound
from tests.cli.run import corral


@pytest.fixture
async def app(url: str) -> AsyncIterator[Corral]:
    app = Corral(url)
    yield app
    await app.close()


async def _finish(app: Corral, queue: str, n: int) -> list[str]:
    """Enqueue ``n`` jobs on ``queue`` and complete them through the store's own
    claim/complete (as a worker would), so they are finished now."""
    for i in range(n):
        await app.enqueue("t.x", [i], queue=queue)
    backend = await app.backend()
    claimed, _ = await backend.claim(queue, n, 30_000, "w1")
    done = [Completion(job.id, job.token, b"1") for job in claimed]
    assert await backend.complete(queue, done, Retention()) == [True] * n
    return [job.id for job in claimed]


async def test_pause_and_resume_a_queue(app: Corral, url: str) -> None:
    await app.enqueue("t.x", queue="mail")
    out = corral("pause", "mail", "--json", url=url)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"queue": "mail", "paused": True}
    assert (await app.queue("mail").counts())["paused"] == 1

    out = corral("resume", "mail", url=url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "queue mail: resumed"
    assert (await app.queue("mail").counts())["paused"] == 0


async def test_clean_by_age_and_limit(app: Corral, url: str) -> None:
    ids = await _finish(app, "mail", 3)
    await app.enqueue("t.x", queue="mail")  # waiting: never cleaned

    # Finished just now: nothing is an hour old.
    young = corral("clean", "mail", "--state", "completed", "--older-than", "1h", url=url)
    assert young.returncode == 0, young.stderr
    assert young.stdout.strip() == "cleaned 0 jobs"

    two = corral(
        "clean", "mail", "--state", "completed", "--older-than", "0", "--limit", "2", "--json",
        url=url,
    )  # fmt: skip
    assert json.loads(two.stdout) == {"cleaned": 2}
    rest = corral("clean", "mail", "--state=completed", "--older-than=0s", "--json", url=url)
    assert json.loads(rest.stdout) == {"cleaned": 1}

    counts = await app.queue("mail").counts()
    assert (counts["completed"], counts["waiting"]) == (0, 1)
    with pytest.raises(JobNotFound):
        await app.get_job(ids[0], "mail")


async def test_remove_a_job_but_not_a_running_one(app: Corral, url: str) -> None:
    waiting = await app.enqueue("t.x", queue="mail", job_id="w1")
    out = corral("remove", "mail", waiting.id, "--json", url=url)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"id": "w1", "removed": True}
    with pytest.raises(JobNotFound):
        await app.get_job("w1", "mail")

    await app.enqueue("t.x", queue="mail", job_id="a1")
    backend = await app.backend()
    await backend.claim("mail", 1, 30_000, "w1")
    busy = corral("remove", "mail", "a1", url=url)
    assert busy.returncode == 2
    assert (
        busy.stderr.strip() == "error: job a1 is active; cancel it first (corral cancel a1 -q mail)"
    )
    assert (await app.get_job("a1", "mail")).state is JobState.ACTIVE


async def test_promote_a_delayed_job(app: Corral, url: str) -> None:
    later = await app.enqueue("t.x", queue="mail", delay=3600)
    out = corral("promote", "mail", later.id, "--json", url=url)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"id": later.id, "state": "waiting"}
    assert (await later.refresh()).state is JobState.WAITING

    again = corral("promote", "mail", later.id, url=url)
    assert again.returncode == 2
    assert "is waiting; only delayed jobs can be promoted" in again.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["pause", "nope"], "error: no queue 'nope' (queues: mail)"),
        (["resume", "nope"], "error: no queue 'nope' (queues: mail)"),
        (["remove", "nope", "j1"], "error: no queue 'nope' (queues: mail)"),
        (["promote", "nope", "j1"], "error: no queue 'nope' (queues: mail)"),
        (["clean", "nope", "--state", "failed", "--older-than", "1h"], "no queue 'nope'"),
        (["pause", "no{braces}"], "invalid queue name 'no{braces}'"),
        (["clean", "mail", "--state", "active", "--older-than", "1h"], "'active' is not one of"),
        (
            ["clean", "mail", "--state", "failed", "--older-than", "soon"],
            "'soon' is not a duration",
        ),
        (["clean", "mail", "--state", "failed", "--older-than", "1h2"], "'1h2' is not a duration"),
        (["clean", "mail", "--state", "failed", "--older-than", "6000w"], "older_than must be"),
        (["clean", "mail", "--state", "failed", "--older-than", "1h", "--limit", "0"], "--limit"),
        (["clean", "mail", "--state", "failed", "--older-than", "1h", "--limit", "x"], "--limit"),
        (["clean", "mail", "--state", "failed"], "Missing option '--older-than'"),
        (["remove", "mail"], "Missing argument 'JOB_ID'"),
    ],
)
async def test_bad_input_is_a_usage_error(
    app: Corral, url: str, args: list[str], needle: str
) -> None:
    await app.enqueue("t.x", queue="mail")
    out = corral(*args, url=url)
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_job_is_exit_3(app: Corral, url: str) -> None:
    app.enqueue_sync("t.x", queue="mail")
    app.close_sync()
    out = corral("promote", "mail", "nope", url=url)
    assert out.returncode == 3
    assert out.stderr.strip() == "error: no job 'nope' in queue 'mail'"


def test_every_twin_has_help() -> None:
    for command in ("pause", "resume", "clean", "remove", "promote"):
        out = corral(command, "--help")
        assert out.returncode == 0
        assert "Usage:" in out.stdout and "--json" in out.stdout
