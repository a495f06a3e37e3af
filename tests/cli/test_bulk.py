"""``corral bulk QUEUE ACTION`` and ``corral rerun QUEUE JOB_ID``: the dashboard's bulk
actions and "run again" from a shell, on both stores."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from corral import Corral, JobState
from corral.backends.base import Retention
from tests.cli.run import corral


@pytest.fixture
async def app(url: str) -> AsyncIterator[Corral]:
    app = Corral(url)
    yield app
    await app.close()


async def _failed(app: Corral, job_id: str, message: str) -> None:
    """A job of queue 'mail' that failed for good with ``message``, as a worker does it."""
    await app.enqueue("emails.send", [job_id], queue="mail", job_id=job_id)
    backend = await app.backend()
    [claimed], _ = await backend.claim("mail", 1, 30_000, "w1")
    error = json.dumps({"type": "SendError", "message": message, "attempt": 1}).encode()
    assert await backend.fail("mail", claimed.id, claimed.token, error, None, Retention())


async def test_retry_what_a_filter_matches(app: Corral, url: str) -> None:
    for job_id, message in (("a", "smtp timeout"), ("b", "read timeout"), ("c", "bad address")):
        await _failed(app, job_id, message)
    out = corral("bulk", "mail", "retry", "--state", "failed", "--error", "timeout", "--json", url=url)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"matched": 2, "changed": 2, "skipped": 0}
    states = {i: (await app.get_job(i, "mail")).state for i in "abc"}
    assert states == {"a": JobState.WAITING, "b": JobState.WAITING, "c": JobState.FAILED}


async def test_cancel_listed_ids(app: Corral, url: str) -> None:
    for job_id in ("w1", "w2", "w3"):
        await app.enqueue("t.x", queue="mail", job_id=job_id)
    out = corral("bulk", "mail", "cancel", "--ids", "w1, w3,nope", url=url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cancel: 2 matched, 2 changed, 0 skipped"
    counts = await app.queue("mail").counts()
    assert (counts["waiting"], counts["cancelled"]) == (1, 2)
    assert (await app.get_job("w2", "mail")).state is JobState.WAITING


async def test_rerun_with_new_arguments(app: Corral, url: str) -> None:
    old = await app.enqueue("emails.send", ["ann@example.com"], queue="mail", priority=3)
    out = corral("rerun", "mail", old.id, "--args", '["bob@example.com"]', "--json", url=url)
    assert out.returncode == 0, out.stderr
    new = json.loads(out.stdout)
    assert new["id"] != old.id
    assert (new["name"], new["args"], new["priority"]) == ("emails.send", ["bob@example.com"], 3)
    assert (await app.get_job(new["id"], "mail")).rerun_of == old.id

    same = json.loads(corral("rerun", "mail", old.id, "--json", url=url).stdout)
    assert same["args"] == ["ann@example.com"]  # no --args: the job's own


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["bulk", "mail", "promote", "--state", "waiting"], "promote applies to delayed jobs"),
        (["bulk", "mail", "retry"], "give --state (and any filter), or --ids"),
        (["bulk", "mail", "retry", "--state", "failed", "--ids", "a"], "not both"),
        (["bulk", "mail", "retry", "--ids", " , "], "--ids: no job id in it"),
        (["bulk", "mail", "explode", "--ids", "a"], "'explode' is not one of"),
        (["bulk", "nope", "retry", "--ids", "a"], "error: no queue 'nope' (queues: mail)"),
        (["bulk", "mail", "retry", "--state", "failed", "--task", ""], "task must be text"),
        (["rerun", "mail", "j1", "--args", "{}"], "must be a JSON array"),
        (["rerun", "mail", "j1", "--kwargs", "[1"], "not valid JSON"),
        (["rerun", "nope", "j1"], "error: no queue 'nope' (queues: mail)"),
    ],
)
async def test_bad_input_is_a_usage_error(
    app: Corral, url: str, args: list[str], needle: str
) -> None:
    await app.enqueue("t.x", queue="mail", job_id="j1")
    out = corral(*args, url=url)
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr
    assert "Traceback" not in out.stderr


async def test_rerun_of_a_missing_job_is_exit_3(app: Corral, url: str) -> None:
    await app.enqueue("t.x", queue="mail")
    out = corral("rerun", "mail", "nope", url=url)
    assert out.returncode == 3
    assert out.stderr.strip() == "error: no job 'nope' in queue 'mail'"


def test_help() -> None:
    for command, words in (("bulk", ("ACTION", "--ids", "--error")), ("rerun", ("--args",))):
        out = corral(command, "--help")
        assert out.returncode == 0
        assert all(word in out.stdout for word in words), out.stdout
