"""What a first-time user tripped over (issue 15), run as a user would: real
``corral`` processes against real SQLite files and the tests' private Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Corral
from tests.cli.run import ROOT, corral


class WorkerProcess:
    """``corral worker`` in a subprocess; ``ready()`` waits for its start line."""

    def __init__(self, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "corral", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": _pythonpath(), **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ready(self) -> str:
        """Read the worker's log until its start line; return that line."""
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # ends if the worker exits
            if " started: " in line:
                return line
        raise AssertionError(f"worker exited with {self.proc.wait()} before starting")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


def _pythonpath() -> str:
    # The examples are imported from the repository root, whatever the cwd.
    return os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])


@pytest.fixture
def worker_process() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


def wait_for_worker(url: str, queue: str) -> None:
    """Until the store lists a live worker serving ``queue`` (its heartbeat)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        out = corral("workers", "--json", "--url", url)
        if any(queue in w["queues"] for w in json.loads(out.stdout or "[]")):
            return
        time.sleep(0.1)
    raise AssertionError(f"no worker registered for {queue!r}")


# -- which store, and who serves the queue ------------------------------------------------


def test_worker_start_line_names_the_sqlite_file_absolutely(
    tmp_path: Path, worker_process: list[WorkerProcess]
) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    worker = WorkerProcess("worker", "examples.tasks:app", cwd=sub)
    worker_process.append(worker)
    line = worker.ready()
    assert f"backend=sqlite:///corral.db (file {sub / 'corral.db'})" in line


def test_worker_start_line_names_redis_with_the_password_masked(
    redis_url: str, worker_process: list[WorkerProcess]
) -> None:
    worker = WorkerProcess("worker", "examples.tasks:app", "--url", redis_url)
    worker_process.append(worker)
    assert f"backend={redis_url}" in worker.ready()


def test_result_timeout_says_no_live_worker_serves_the_queue(url: str) -> None:
    out = corral("enqueue", "t.x", "-q", "lonely", "--wait", "0.2", "--url", url)
    assert out.returncode == 5
    assert "did not finish within 0.2 s" in out.stderr
    assert "no live worker serves queue 'lonely'" in out.stderr


def test_enqueue_warns_when_no_live_worker_serves_the_queue(url: str) -> None:
    out = corral("enqueue", "emails.send", "--url", url, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["queue"] == "default"  # stdout stays pure JSON
    assert "warning: no live worker serves queue 'default'" in out.stderr
    assert "-q QUEUE" in out.stderr  # says how to aim elsewhere


def test_enqueue_does_not_warn_when_a_worker_serves_the_queue(
    url: str, worker_process: list[WorkerProcess]
) -> None:
    worker = WorkerProcess("--url", url, "worker", "examples.tasks:app", "-q", "emails")
    worker_process.append(worker)
    worker.ready()
    wait_for_worker(url, "emails")
    out = corral("enqueue", "emails.send", "-q", "emails", "--url", url, "--json")
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr
    # Piped, the 9-column table is one header line and one line for the worker.
    table = corral("workers", "--url", url).stdout
    assert len([line for line in table.splitlines() if line.strip()]) == 2, table


def test_a_producer_in_a_subfolder_is_told_which_file_it_uses(tmp_path: Path) -> None:
    """The original report: a second database in a subfolder, and a silent timeout."""
    sub = tmp_path / "sub"
    sub.mkdir()
    out = corral("enqueue", "t.x", "--wait", "0.1", cwd=sub)
    assert out.returncode == 5
    assert "no live worker serves queue 'default'" in out.stderr
    assert f"backend sqlite:///corral.db (file {sub / 'corral.db'})" in out.stderr


# -- options where a user types them ------------------------------------------------------


def test_url_app_and_json_work_after_the_subcommand(url: str) -> None:
    added = corral(
        "enqueue",
        "pos.sync",
        "--args",
        '["r-1"]',
        "--app",
        "examples.tasks:app",
        "--url",
        url,
        "--json",
    )
    assert added.returncode == 0, added.stderr
    job = json.loads(added.stdout)
    assert job["queue"] == "sync"  # the task's queue, known from --app
    assert json.loads(corral("queues", "--url", url, "--json").stdout)["sync"]["waiting"] == 1
    shown = corral("job", job["id"], "--url", url, "--json")
    assert json.loads(shown.stdout)["id"] == job["id"]
    # --json before the subcommand works too, and the later --url wins
    both = corral("--json", "--url", "sqlite:///:memory:", "queues", "--url", url)
    assert json.loads(both.stdout)["sync"]["waiting"] == 1
    assert corral("limits", "sync", "--url", url, "--json").returncode == 0
    assert json.loads(corral("workers", "--url", url, "--json").stdout) == []
    assert json.loads(corral("schedules", "--url", url, "--json").stdout) == []


# -- arguments from a file or stdin -------------------------------------------------------


def test_args_and_kwargs_from_a_file_and_from_stdin(url: str, tmp_path: Path) -> None:
    big = ["x" * 400_000]  # over the 128 KiB one command-line argument may have (Linux)
    payload = tmp_path / "args.json"
    payload.write_text(json.dumps(big))
    out = corral(
        "enqueue",
        "t.x",
        "--args",
        f"@{payload}",
        "--kwargs",
        "-",
        "--url",
        url,
        "--json",
        stdin='{"n": 3}',
    )
    assert out.returncode == 0, out.stderr
    job_id = json.loads(out.stdout)["id"]
    app = Corral(url)
    job = app.get_job_sync(job_id)
    app.close_sync()
    assert job.args == big and job.kwargs == {"n": 3}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--args", "@/nonexistent/args.json"], "--args: cannot read '/nonexistent/args.json'"),
        (["--args", "-", "--kwargs", "-"], "only one of --args and --kwargs can read stdin"),
    ],
)
def test_bad_file_arguments_are_one_line_errors(url: str, args: list[str], needle: str) -> None:
    out = corral("enqueue", "t.x", *args, "--url", url, stdin="[]")
    assert out.returncode == 2
    assert needle in out.stderr
    assert "Traceback" not in out.stderr


# -- output that is piped is not cut --------------------------------------------------------


def test_piped_tables_and_job_lines_are_not_cut(url: str) -> None:
    queue = "q" * 60
    job_id = "j" * 100
    added = corral(
        "enqueue",
        "reports.with_a_rather_long_task_name",
        "-q",
        queue,
        "--job-id",
        job_id,
        "--url",
        url,
    )
    assert added.returncode == 0, added.stderr
    first = added.stdout.splitlines()[0]
    assert job_id in first and queue in first and "waiting" in first  # one line
    table = corral("queues", "--url", url)
    row = next(line for line in table.stdout.splitlines() if queue in line)  # not "qqq…"
    assert row.split()[:2] == [queue, "1"]  # waiting, on the same line
    app = Corral(url)
    app.schedules.add_sync(
        "s" * 50, "reports.with_a_rather_long_task_name", cron="@daily", queue=queue
    )
    app.close_sync()
    schedules = corral("schedules", "--url", url)
    assert any(
        "s" * 50 in line and queue in line and "@daily" in line
        for line in schedules.stdout.splitlines()
    ), schedules.stdout


# -- the examples run as their headers say ------------------------------------------------


@pytest.mark.parametrize("example", ["quickstart", "tenants"])
def test_example_runs_as_its_header_says(example: str, tmp_path: Path) -> None:
    header = (ROOT / "examples" / f"{example}.py").read_text().split('"""')[1]
    command = next(line.split("  ")[0] for line in header.splitlines() if "python" in line)
    assert command == f"python -m examples.{example}"
    env = {k: v for k, v in os.environ.items() if k not in ("CORRAL_URL", "REDIS_URL")}
    env["PYTHONPATH"] = str(ROOT / "src")  # corral installed; the repository is not on the path
    out = subprocess.run(
        [sys.executable, *command.split()[1:]],
        cwd=ROOT,
        env={**env, "CORRAL_URL": f"sqlite:///{tmp_path / 'ex.db'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


# -- the README's CLI block runs as shown ----------------------------------------------------


def test_the_readme_cli_block_runs_as_shown(url: str, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## CLI\n", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    corral_cmd = f"{sys.executable} -m corral"  # `corral` once the venv is activated
    script = "\n".join(
        line.replace("corral ", f"{corral_cmd} ", 1).replace("| corral ", f"| {corral_cmd} ")
        for line in block.splitlines()
    )
    out = subprocess.run(
        ["bash", "-c", "set -eo pipefail\n" + script],
        cwd=tmp_path,
        env={**os.environ, "CORRAL_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"{script}\n{out.stderr}"
    assert '"id": "welcome-1"' in out.stdout
    assert "retried 1 job" in out.stdout
