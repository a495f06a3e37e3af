"""``corral demo``, run for real in a subprocess against the test Redis."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.cli import run
from tests.redis_server import _free_port

#: The demo runs a worker to the end: give it longer than other commands.
corral = functools.partial(run.corral, timeout=60)


def run_json(redis_url: str, jobs: int) -> dict[str, Any]:
    proc = corral("--url", redis_url, "demo", "--jobs", str(jobs), "--json")
    assert proc.returncode == 0, proc.stderr
    summary: dict[str, Any] = orjson.loads(proc.stdout)
    return summary


def test_demo_json_summary(redis_url: str) -> None:
    summary = run_json(redis_url, 12)

    assert summary["jobs"] == 12
    assert summary["completed"] + summary["failed"] == 12
    tasks = summary["tasks"]
    assert sum(row["jobs"] for row in tasks.values()) == 12
    broken = tasks["demo.broken_import"]
    assert broken["failed"] == broken["jobs"] >= 1
    assert broken["retries"] == broken["jobs"]  # attempts=2: one retry each
    flaky = tasks["demo.flaky_webhook"]
    assert flaky["completed"] == flaky["jobs"] >= 1
    assert flaky["retries"] == 2 * flaky["jobs"]  # succeeds on the third attempt
    assert summary["retries"] > 0
    assert tasks["demo.sync_orders"]["completed"] == tasks["demo.sync_orders"]["jobs"]
    assert tasks["demo.send_report"]["completed"] == 1
    assert summary["failed_job"]
    assert summary["url"] == redis_url
    assert summary["seconds"] < 30


# Slow (more demo runs; CI): test_demo_json_summary keeps a demo run in the inner loop.
@pytest.mark.slow
def test_demo_rerun_starts_clean(redis_url: str) -> None:
    run_json(redis_url, 6)
    again = run_json(redis_url, 6)
    assert again["jobs"] == 6
    assert again["completed"] + again["failed"] == 6


def test_demo_human_output(redis_url: str) -> None:
    proc = corral("--url", redis_url, "demo", "--jobs", "6")

    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"Data lives in: {redis_url}" in out
    assert "Demo summary" in out
    assert "demo.broken_import" in out
    # Run as `python -m corral`: the printed commands say so, and run as printed.
    prefix = f"{sys.executable} -m corral"
    assert f"{prefix} job " in out
    assert f"{prefix} queues" in out
    assert f"{prefix} worker --help" in out
    # No TTY: no live redraws, so the output stays short.
    assert len(out.splitlines()) < 40, out


def test_demo_live_display_on_a_terminal(redis_url: str) -> None:
    # Make rich treat the pipe as an interactive terminal: per-job page bars are drawn.
    proc = corral(
        "--url",
        redis_url,
        "demo",
        "--jobs",
        "12",
        env={"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "100"},
    )

    assert proc.returncode == 0, proc.stderr
    assert "pages" in proc.stdout
    assert "Data lives in:" in proc.stdout


# Slow (more demo runs; CI): test_demo_json_summary keeps a demo run in the inner loop.
@pytest.mark.slow
def test_demo_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    for _ in range(5):  # later runs start from earlier leftovers; a stuck stop would hang
        proc = corral("--url", url, "demo", "--jobs", "8", "--json", timeout=15)
        assert proc.returncode == 0, proc.stderr
        summary = orjson.loads(proc.stdout)
        assert summary["completed"] + summary["failed"] == 8


# Slow (more demo runs; CI): test_demo_json_summary keeps a demo run in the inner loop.
@pytest.mark.slow
def test_demo_failed_job_can_be_inspected(redis_url: str) -> None:
    failed = run_json(redis_url, 6)["failed_job"]
    proc = corral("--url", redis_url, "job", failed, "--json")
    assert proc.returncode == 0, proc.stderr
    job = orjson.loads(proc.stdout)
    assert job["state"] == "failed"
    assert job["name"] == "demo.broken_import"
    assert "invalid date" in job["errors"][-1]["message"]


def test_demo_rejects_zero_jobs() -> None:
    proc = corral("--url", "redis://127.0.0.1:1/0", "demo", "--jobs", "0")
    assert proc.returncode == 2
    assert "--jobs" in proc.stderr


def test_demo_bad_url_is_one_line_error() -> None:
    proc = corral("--url", "mysql://localhost/db", "demo")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_demo_unreachable_redis_is_one_line_error() -> None:
    proc = corral("--url", f"redis://127.0.0.1:{_free_port()}/0", "demo", "--jobs", "3")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ")
    assert len(proc.stderr.strip().splitlines()) == 1
