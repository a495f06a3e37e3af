"""``corral worker`` with an app whose startup hook fails: one line, exit 1, no claim."""

from __future__ import annotations

from pathlib import Path

from corral import Corral, JobState
from tests.cli.run import corral

APP = """
from corral import Corral

app = Corral()

@app.on_startup
def connect_db(state):
    raise OSError("db unreachable")

@app.task(name="hooked.job")
def job():
    return 1
"""


def test_a_failing_startup_hook_exits_1_with_one_line(url: str, tmp_path: Path) -> None:
    (tmp_path / "hooked.py").write_text(APP)
    app = Corral(url)
    job = app.enqueue_sync("hooked.job")
    out = corral("worker", "hooked:app", url=url, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: on_startup hook connect_db failed: OSError: db unreachable"
    ]
    job = app.get_job_sync(job.id)
    assert (job.state, job.attempts) == (JobState.WAITING, 0)
    app.close_sync()
