"""OpenTelemetry spans with a real worker on each backend (corral.tracing), read back
from the SDK's in-memory exporter: the producer's ``send`` span is the parent of each
attempt's ``process`` span, and the task body runs inside the latter."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from corral import Corral, JobState
from corral.errors import ConfigurationError
from corral.tracing import current_trace_carrier, trace_id_of
from tests.worker.conftest import Workers, wait_until


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A provider of the test's own (never the global one), exporting as spans end."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def one(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    spans = named(exporter, name)
    assert len(spans) == 1, [s.name for s in exporter.get_finished_spans()]
    return spans[0]


def ids(span: ReadableSpan) -> tuple[int, int]:
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


async def test_process_spans_are_children_of_the_send_span_and_parents_of_the_body(
    app: Corral, workers: Workers, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app.enable_tracing(provider)
    tracer = provider.get_tracer("test")

    @app.task(name="traced.async_body")
    async def async_body(n: int) -> int:
        with tracer.start_as_current_span("inner.async"):
            return n + 1

    @app.task(name="traced.sync_body")
    def sync_body(n: int) -> int:  # run in a thread
        with tracer.start_as_current_span("inner.sync"):
            return n * 2

    with tracer.start_as_current_span("request"):
        first = await async_body.enqueue(1)
        second = await sync_body.enqueue(4)
    workers.start()
    assert await first.result(timeout=5) == 2
    assert await second.result(timeout=5) == 8

    request = one(exporter, "request")
    sends = named(exporter, "send default")
    processes = named(exporter, "process default")
    assert len(sends) == 2 and len(processes) == 2
    for job, inner_name in ((first, "inner.async"), (second, "inner.sync")):
        send = next(s for s in sends if s.attributes["messaging.message.id"] == job.id)
        process = next(p for p in processes if p.attributes["messaging.message.id"] == job.id)
        inner = one(exporter, inner_name)
        # send: a PRODUCER child of the caller's span, its context stored with the job.
        assert send.kind is SpanKind.PRODUCER
        assert send.parent is not None and send.parent.span_id == ids(request)[1]
        assert ids(send)[0] == ids(request)[0]
        assert dict(send.attributes or {}) == {
            "messaging.system": "corral",
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
            "messaging.destination.name": "default",
            "messaging.message.id": job.id,
            "messaging.corral.task": job.name,
        }
        record = await app.get_job(job.id)
        assert trace_id_of(current_trace_carrier(record._rec())) == f"{ids(send)[0]:032x}"
        # process: a CONSUMER child of send (same trace), linked to it too.
        assert process.kind is SpanKind.CONSUMER
        assert process.parent is not None and process.parent.span_id == ids(send)[1]
        assert process.parent.is_remote
        assert ids(process)[0] == ids(send)[0]
        assert [(link.context.trace_id, link.context.span_id) for link in process.links] == [
            ids(send)
        ]
        assert dict(process.attributes or {}) == {
            "messaging.system": "corral",
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": "default",
            "messaging.message.id": job.id,
            "messaging.corral.task": job.name,
            "messaging.corral.attempt": 1,
            "messaging.corral.outcome": "completed",
        }
        assert process.status.status_code is StatusCode.UNSET
        # The body's own span is a child of the attempt's span.
        assert inner.parent is not None and inner.parent.span_id == ids(process)[1]
        assert ids(inner)[0] == ids(send)[0]


async def test_each_attempt_has_its_span_and_failures_are_errors(
    app: Corral, workers: Workers, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app.enable_tracing(provider)

    @app.task(name="traced.flaky", attempts=2, backoff=0)
    async def flaky() -> None:
        raise ValueError("no luck")

    job = await flaky.enqueue()
    workers.start()
    assert await job.wait(timeout=5) is JobState.FAILED

    send = one(exporter, "send default")
    attempts = sorted(
        named(exporter, "process default"),
        key=lambda span: (span.attributes or {})["messaging.corral.attempt"],
    )
    assert [(s.attributes or {})["messaging.corral.attempt"] for s in attempts] == [1, 2]
    assert [(s.attributes or {})["messaging.corral.outcome"] for s in attempts] == [
        "retrying",
        "failed",
    ]
    for span in attempts:
        assert span.parent is not None and span.parent.span_id == ids(send)[1]
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError: no luck"
        assert (span.attributes or {})["error.type"] == "ValueError"
        [event] = [e for e in span.events if e.name == "exception"]
        assert (event.attributes or {})["exception.type"] == "ValueError"
        assert (event.attributes or {})["exception.message"] == "no luck"
        assert "raise ValueError" in str((event.attributes or {})["exception.stacktrace"])


async def test_a_batch_is_one_send_span_and_every_job_carries_it(
    app: Corral, workers: Workers, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app.enable_tracing(provider)

    @app.task(name="traced.item")
    async def item(n: int) -> int:
        return n

    jobs = await item.enqueue_many([(n,) for n in range(3)])
    workers.start()
    for job in jobs:
        assert await job.wait(timeout=5) is JobState.COMPLETED

    send = one(exporter, "send default")
    attributes = dict(send.attributes or {})
    assert attributes["messaging.batch.message_count"] == 3
    assert "messaging.message.id" not in attributes
    processes = named(exporter, "process default")
    assert sorted((p.attributes or {})["messaging.message.id"] for p in processes) == sorted(
        job.id for job in jobs
    )
    assert {p.parent.span_id for p in processes if p.parent} == {ids(send)[1]}


async def test_without_tracing_no_span_and_no_stored_context(
    app: Corral,
    producer: Corral,
    workers: Workers,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    tracer = provider.get_tracer("test")

    @app.task(name="traced.plain")
    async def plain() -> str | None:
        with tracer.start_as_current_span("inner"):
            return None

    # Neither the producer nor the worker traces: nothing is stored with the job and
    # the body's span is a root of its own.
    with tracer.start_as_current_span("request"):
        untraced = await plain.enqueue()
    assert current_trace_carrier((await app.get_job(untraced.id))._rec()) == {}
    # A tracing producer, a worker without tracing: a send span, no process span.
    producer.enable_tracing(provider)
    traced = await producer.enqueue("traced.plain")
    workers.start()
    for job in (untraced, traced):
        assert await job.wait(timeout=5) is JobState.COMPLETED
    await wait_until(lambda: len(named(exporter, "inner")) == 2)
    assert sorted(span.name for span in exporter.get_finished_spans()) == [
        "inner",
        "inner",
        "request",
        "send default",
    ]
    assert all(span.parent is None for span in named(exporter, "inner"))
    # A rerun belongs to the trace that enqueues it, not to the original's.
    assert current_trace_carrier((await app.get_job(traced.id))._rec())
    rerun = await (await app.get_job(traced.id)).run_again()
    assert current_trace_carrier(rerun._rec()) == {}


def test_tracing_without_opentelemetry_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'corral\[otel\]'"):
        Corral("sqlite:///:memory:", tracing=True)


def test_the_trace_api_stays_unimported_without_tracing() -> None:
    # What "off costs nothing" rests on: a fresh interpreter importing corral and
    # making an app does not load opentelemetry.

    code = (
        "import sys, corral; corral.Corral('sqlite:///:memory:'); "
        "import corral.worker, corral.logs; "
        "print(any(m.startswith('opentelemetry') for m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False"


async def test_a_job_without_a_trace_context_gets_a_root_span(
    app: Corral,
    producer: Corral,
    workers: Workers,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    app.enable_tracing(provider)

    @app.task(name="traced.orphan")
    async def orphan() -> None:
        return None

    job = await producer.enqueue("traced.orphan")  # a producer that does not trace
    with provider.get_tracer("test").start_as_current_span("ambient"):
        workers.start()  # its tasks inherit this context: the attempt must not
    assert await job.wait(timeout=5) is JobState.COMPLETED
    process = one(exporter, "process default")
    assert process.parent is None and process.links == ()
    assert (process.attributes or {})["messaging.message.id"] == job.id
