"""A flow survives its worker being SIGKILLed mid-flow: the running job's lease runs
out, another worker takes it over, and the rest of the flow runs after it."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from corral import Corral, Flow, JobState
from tests.process.conftest import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def app(redis_url: str) -> Iterator[Corral]:
    app = Corral(redis_url)
    yield app
    app.close_sync()


def test_a_flow_completes_after_its_worker_is_killed(app: Corral, spawn_worker) -> None:
    flow = Flow()
    start = flow.add(app.call("proc.echo", ["start"], queue="proc"), name="start")
    slow = flow.add(app.call("proc.sleepy", [60], queue="proc"), name="slow", after=[start])
    flow.add(app.call("proc.echo", ["end"], queue="proc"), name="end", after=[slow])
    run = app.start_flow_sync(flow)
    first = spawn_worker("-q", "proc", "--lease", "1")
    slow_job = run.jobs["slow"]
    assert slow_job is not None
    wait_until(lambda: app.get_job_sync(slow_job.id, "proc").state is JobState.ACTIVE)
    first.signal(signal.SIGKILL)
    first.wait(10)
    spawn_worker("-q", "proc", "--lease", "1")
    assert run.wait_sync(timeout=30) == "completed"
    assert run.results()["slow"]["stalls"] == 1
    assert run.results()["end"] == "end"
