"""``*_sync`` calls keep working in a child made by fork() (pre-forking servers)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from corral import Corral


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_sync_calls_work_in_a_forked_child(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        request.getfixturevalue("redis_url")
        if backend == "redis"
        else f"sqlite:///{tmp_path / 'c.db'}"
    )
    app = Corral(url)
    app.enqueue_sync("t.x", [0], queue="fork")  # the parent's portal loop and connections exist
    pid = os.fork()
    if pid == 0:  # child: must not hang on the parent's loop thread
        signal.alarm(10)
        try:
            app.enqueue_sync("t.x", [1], queue="fork")
            code = 0 if app.queue("fork").counts_sync()["waiting"] == 2 else 3
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert app.queue("fork").counts_sync()["waiting"] == 2  # the parent still works
    app.close_sync()
