"""``manage.py corral_worker`` as a real process: it runs Django tasks (one it imports
only when its first job arrives) that write through the ORM, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.contrib.django._compat import TaskResultStatus
from tests.contrib.django.conftest import finished
from tests.contrib.django.testapp import jobs
from tests.contrib.django.testapp.models import Note

ROOT = Path(__file__).resolve().parents[3]
MANAGE = Path(__file__).with_name("manage.py")


def manage(store: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CORRAL_DJANGO_STORE": store,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    return subprocess.Popen(
        [sys.executable, str(MANAGE), "corral_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def worker_process(store_url: str) -> Iterator[subprocess.Popen[str]]:
    proc = manage(store_url, "-c", "2", "--grace", "2", "--loop", "asyncio")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        assert proc.stdout is not None
        proc.stdout.close()


def test_corral_worker_runs_tasks(
    backend: Any, worker_process: subprocess.Popen[str], db_alias: str
) -> None:
    result = jobs.write_note_elsewhere.enqueue(db_alias, "from manage.py corral_worker")
    done = finished(backend, result.id, timeout=20)
    assert done.status == TaskResultStatus.SUCCESSFUL, done.errors
    assert f":{worker_process.pid}:" in done.worker_ids[0]  # that process ran it
    note = Note.objects.using(db_alias).get(pk=done.return_value)
    assert note.text == "from manage.py corral_worker"

    worker_process.send_signal(signal.SIGTERM)
    assert worker_process.wait(15) == 0
    assert worker_process.stdout is not None
    assert "worker" in worker_process.stdout.read()


def test_corral_worker_refuses_an_unreachable_store() -> None:
    proc = manage("redis://127.0.0.1:1/0")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    assert "cannot be reached" in out and "corral.E003" in out and "Traceback" not in out


@pytest.mark.backends("sqlite")
def test_corral_worker_names_a_wrong_alias(store_url: str) -> None:
    proc = manage(store_url, "--backend", "other")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "TASKS['other'] is not a corral.contrib.django.CorralBackend" in out
