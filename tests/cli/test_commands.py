"""The ``corral`` commands, run as a user would (a real process, real backends)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from corral import Corral, JobState
from tests.cli.run import ROOT, corral


def test_enqueue_then_job_then_queues(url: str) -> None:
    out = corral(
        "enqueue",
        "emails.send",
        "--args",
        '["a@b.c"]',
        "-q",
        "emails",
        "--priority",
        "5",
        "--json",
        url=url,
    )
    assert out.returncode == 0, out.stderr
    job = json.loads(out.stdout)
    assert job["state"] == "waiting"
    assert job["args"] == ["a@b.c"]
    assert job["priority"] == 5

    shown = corral("job", job["id"], "--json", url=url)
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["queue"] == "emails"

    human = corral("job", job["id"], url=url)
    assert job["id"] in human.stdout and "waiting" in human.stdout

    queues = json.loads(corral("queues", "--json", url=url).stdout)
    assert queues["emails"]["waiting"] == 1


def test_enqueue_is_idempotent_with_job_id(url: str) -> None:
    for _ in range(2):
        out = corral("enqueue", "t.x", "--job-id", "once", "--json", url=url)
        assert out.returncode == 0
    assert json.loads(corral("queues", "--json", url=url).stdout)["default"]["waiting"] == 1


def test_cancel_and_retry_by_id_and_in_bulk(url: str) -> None:
    app = Corral(url)
    jobs = [app.enqueue_sync("t.x", [i], queue="bulk") for i in range(3)]
    app.close_sync()

    one = corral("cancel", jobs[0].id, "--json", url=url)
    assert json.loads(one.stdout) == {"id": jobs[0].id, "state": "cancelled"}
    rest = corral("cancel", "--all", "-q", "bulk", "--json", url=url)
    assert json.loads(rest.stdout) == {"cancelled": 2}

    again = corral("retry", jobs[0].id, "--json", url=url)
    assert json.loads(again.stdout) == {"retried": 1}
    bulk = corral("retry", "--all", "-q", "bulk", url=url)
    assert bulk.returncode == 0
    assert bulk.stdout.strip() == "retried 0 jobs"  # --all takes failed jobs; none here

    app = Corral(url)
    assert app.get_job_sync(jobs[0].id, "bulk").state is JobState.WAITING
    app.close_sync()


def test_retry_of_a_waiting_job_is_refused(url: str) -> None:
    app = Corral(url)
    job = app.enqueue_sync("t.x")
    app.close_sync()
    out = corral("retry", job.id, url=url)
    assert out.returncode == 2
    assert "only failed or cancelled" in out.stderr


def test_enqueue_wait_reports_failure_with_exit_code(url: str, tmp_path: Path) -> None:
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corral",
            "--url",
            url,
            "worker",
            "examples.tasks:app",
            "-q",
            "webhooks",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ok = corral(
            "enqueue",
            "webhooks.deliver",
            "--args",
            '["https://ok.example", {}]',
            "-q",
            "webhooks",
            "--wait",
            "20",
            "--json",
            url=url,
        )
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["result"] == 200
        gone = corral(
            "enqueue",
            "webhooks.deliver",
            "--args",
            '["https://gone.example", {}]',
            "-q",
            "webhooks",
            "--wait",
            "20",
            url=url,
        )
        assert gone.returncode == 4
        assert "is gone" in gone.stderr
    finally:
        worker.terminate()
        worker.wait(15)


def test_enqueue_with_group_and_dedupe_key(url: str) -> None:
    first = corral("enqueue", "t.x", "--group", "shop-1", "--dedupe-key", "k", "--json", url=url)
    assert first.returncode == 0, first.stderr
    job = json.loads(first.stdout)
    assert job["group"] == "shop-1"
    again = corral("enqueue", "t.x", "--dedupe-key", "k", "--json", url=url)
    assert json.loads(again.stdout)["id"] == job["id"]
    bad = corral("enqueue", "t.x", "--debounce", "5", url=url)
    assert bad.returncode == 2
    assert "need a dedupe_key" in bad.stderr


def test_limits_show_set_and_clear(url: str) -> None:
    out = corral(
        "limits", "emails", "--max-active", "5", "--group-rate", "10/60", "--json", url=url
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["group_rate_max"] == 10
    shown = corral("limits", "emails", url=url)
    assert "10 per 60 s" in shown.stdout
    cleared = corral("limits", "emails", "--clear", "--json", url=url)
    assert json.loads(cleared.stdout)["max_active"] is None
    bad = corral("limits", "emails", "--rate", "fast", url=url)
    assert bad.returncode == 2
    assert "is not JOBS/SECONDS" in bad.stderr


def test_wait_timeout_exit_code(url: str) -> None:
    out = corral("enqueue", "t.x", "--wait", "0.2", url=url)
    assert out.returncode == 5
    assert "did not finish" in out.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["enqueue", "t.x", "--args", "{}"], "must be a JSON array"),
        (["enqueue", "t.x", "--kwargs", "[1]"], "must be a JSON object"),
        (["enqueue", "t.x", "--args", "[1"], "not valid JSON"),
        (["enqueue", "bad name!"], "invalid task name"),
        (["enqueue", "t.x", "-q", "no{braces}"], "invalid queue name"),
        (["enqueue", "t.x", "--priority", "5000"], "--priority"),
        (["cancel"], "give a JOB_ID"),
        (["retry", "--all"], "--all needs --queue"),
        (["worker", "nosuch.module:app"], "cannot import 'nosuch.module'"),
        (["worker", "examples.tasks:nothing"], "has no attribute 'nothing'"),
        (["worker", "examples.tasks:deliver_webhook"], "not a Corral app"),
    ],
)
def test_bad_input_is_a_one_line_error(url: str, args: list[str], needle: str) -> None:
    out = corral(*args, url=url)
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_job_exit_code(url: str) -> None:
    out = corral("job", "nope", url=url)
    assert out.returncode == 3
    assert "no job 'nope'" in out.stderr


def test_unreachable_redis_names_the_url_with_password_masked() -> None:
    out = corral("queues", url="redis://:s3cret@127.0.0.1:1/0")
    assert out.returncode == 1
    assert "redis://:***@127.0.0.1:1/0" in out.stderr
    assert "s3cret" not in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_worker_with_unreachable_redis_fails_at_start() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "corral",
            "--url",
            "redis://127.0.0.1:1/0",
            "worker",
            "examples.tasks:app",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_scheme_is_refused() -> None:
    out = corral("queues", url="mysql://u:pw@db/x")
    assert out.returncode == 2
    assert "unsupported backend URL 'mysql://u:***@db/x'" in out.stderr


def test_help_lists_the_commands() -> None:
    out = corral("--help")
    for command in ("worker", "enqueue", "job", "queues", "workers", "retry", "cancel"):
        assert command in out.stdout
