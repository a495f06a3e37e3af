"""A flow survives its worker being SIGKILLed mid-flow, on Redis and on SQLite: the
running job's lease runs out, another worker takes it over, and the rest of the flow
runs after it."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corral import Corral, Flow, JobState
from tests.process.conftest import WorkerProcess, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(params=["redis", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'flows.db'}"


@pytest.fixture
def app(url: str) -> Iterator[Corral]:
    app = Corral(url)
    yield app
    app.close_sync()


@pytest.fixture
def spawn(url: str) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        started.append(WorkerProcess(url, *args))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


def test_a_flow_completes_after_its_worker_is_killed(
    app: Corral, spawn: Callable[..., WorkerProcess]
) -> None:
    flow = Flow()
    start = flow.add(app.call("proc.echo", ["start"], queue="proc"), name="start")
    slow = flow.add(app.call("proc.sleepy", [60], queue="proc"), name="slow", after=[start])
    flow.add(app.call("proc.echo", ["end"], queue="proc"), name="end", after=[slow])
    run = app.start_flow_sync(flow)
    first = spawn("-q", "proc", "--lease", "1")
    slow_job = run.jobs["slow"]
    assert slow_job is not None
    wait_until(lambda: app.get_job_sync(slow_job.id, "proc").state is JobState.ACTIVE, 30)
    first.signal(signal.SIGKILL)
    first.wait(10)
    spawn("-q", "proc", "--lease", "1")
    assert run.wait_sync(timeout=30) == "completed"
    assert run.results()["slow"]["stalls"] == 1
    assert run.results()["end"] == "end"
