"""``corral worker --log-format json``: every line the process writes is one JSON
object; a job's outcome line names the job, its attempt, outcome, duration and trace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from corral import Corral, JobState
from tests.cli.run import ROOT, corral

APP = """
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from corral import Corral

trace.set_tracer_provider(TracerProvider())  # spans made, none exported
app = Corral(tracing=True)

@app.task(name="logs.ok")
async def ok():
    logging.getLogger("logs.app").info("inside the task")
    return 1

@app.task(name="logs.flaky", attempts=2, backoff=0)
def flaky():
    raise ValueError("boom")
"""


def poll(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.05)


def test_json_log_lines_per_job_outcome(url: str, tmp_path: Path) -> None:
    (tmp_path / "logapp.py").write_text(APP)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    producer = Corral(url)
    producer.enable_tracing(provider)
    ok = producer.enqueue_sync("logs.ok")
    flaky = producer.enqueue_sync("logs.flaky")
    trace_of = {
        str((span.attributes or {})["messaging.message.id"]): f"{span.context.trace_id:032x}"
        for span in exporter.get_finished_spans()
        if span.context is not None
    }
    assert set(trace_of) == {ok.id, flaky.id}

    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "CORRAL_LOG_FORMAT": "json"}
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "corral", "--url", url, "worker", "logapp:app"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    try:
        poll(lambda: producer.get_job_sync(ok.id).state is JobState.COMPLETED)
        poll(lambda: producer.get_job_sync(flaky.id).state is JobState.FAILED)
        # The completion's log line follows its record: wait for it, then stop.
        poll(lambda: b'"outcome":"completed"' in (tmp_path / "err").read_bytes())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        producer.close_sync()

    text = (tmp_path / "out").read_text() + (tmp_path / "err").read_text()
    lines: list[dict[str, Any]] = [orjson.loads(line) for line in text.splitlines() if line]
    for line in lines:
        assert isinstance(line, dict)
        assert {"timestamp", "level", "logger", "message"} <= line.keys(), line
        assert line["timestamp"].endswith("Z")
    assert any(line["logger"] == "corral.worker" and "started" in line["message"] for line in lines)

    def outcome(job_id: str, attempt: int) -> dict[str, Any]:
        [found] = [
            line
            for line in lines
            if line["logger"] == "corral.job"
            and line["job_id"] == job_id
            and line["attempt"] == attempt
        ]
        assert isinstance(found["duration"], float) and 0 <= found["duration"] < 10
        assert found["queue"] == "default"
        assert found["trace_id"] == trace_of[job_id]
        return found

    done = outcome(ok.id, 1)
    assert (done["level"], done["task"], done["outcome"]) == ("info", "logs.ok", "completed")
    assert "error_type" not in done
    retrying, failed = outcome(flaky.id, 1), outcome(flaky.id, 2)
    for line, verb, level in ((retrying, "retrying", "warning"), (failed, "failed", "error")):
        assert (line["outcome"], line["level"], line["task"]) == (verb, level, "logs.flaky")
        assert (line["error_type"], line["error_message"]) == ("ValueError", "boom")
    # A line the task logs carries its job and the attempt's span.
    [inside] = [line for line in lines if line["message"] == "inside the task"]
    assert (inside["logger"], inside["job_id"], inside["task"]) == ("logs.app", ok.id, "logs.ok")
    assert inside["trace_id"] == trace_of[ok.id]
    assert len(inside["span_id"]) == 16


def test_a_bad_log_format_names_the_choices(url: str, tmp_path: Path) -> None:
    (tmp_path / "logapp.py").write_text(APP)
    out = corral("worker", "logapp:app", "--log-format", "xml", url=url, cwd=tmp_path)
    assert out.returncode == 2
    assert "'xml' is not one of 'text', 'json'" in out.stderr
    out = corral("worker", "logapp:app", url=url, cwd=tmp_path, env={"CORRAL_LOG_FORMAT": "yaml"})
    assert out.returncode == 2
    assert "'yaml' is not one of 'text', 'json'" in out.stderr
