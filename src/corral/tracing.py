"""OpenTelemetry tracing of jobs (the ``corral[otel]`` extra), off unless asked for.

With ``Corral(tracing=True)`` or :meth:`Corral.enable_tracing`, every enqueue runs in
a PRODUCER span ``send {queue}`` whose context is stored with each job it sends (the
``"trace"`` entry of the job's options: ``traceparent``, ``tracestate``... as the
global propagator writes them). A worker of a tracing app runs each attempt in a
CONSUMER span ``process {queue}``, a child of that context and linked to it, and the
task body runs inside it: spans the task opens (an instrumented HTTP client...)
are its children, in async tasks and in the threads of plain ones alike.

Attributes follow OpenTelemetry's messaging conventions: ``messaging.system`` =
``corral``, ``messaging.operation.name``/``.type`` (``send``, ``process``),
``messaging.destination.name`` (the queue), ``messaging.message.id`` (the job id; a
batch send gives ``messaging.batch.message_count`` instead), plus
``messaging.corral.task``, ``messaging.corral.attempt`` and
``messaging.corral.outcome`` (completed, retrying, failed, cancelled, dropped). A
failed or retried attempt ends with status ERROR, ``error.type`` and the exception
recorded.

Nothing here imports ``opentelemetry`` until tracing is enabled: without it, the
enqueue path and the worker pay one ``is None`` test per call or job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from corral.errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, TracerProvider

    from corral.backends.records import ClaimedJob, NewJob
    from corral.worker.executor import Outcome

__all__ = ["TRACE_KEY", "JobTracing", "current_trace_carrier", "trace_id_of"]

#: The entry of a job's stored options that holds its creation context.
TRACE_KEY = "trace"
SYSTEM = "corral"

#: What the worker's outcome kinds are called on a span (as in the job's log line).
_OUTCOMES = {
    "completed": "completed",
    "retry": "retrying",
    "failed": "failed",
    "cancelled": "cancelled",
    "dropped": "dropped",
}


def _options(source: bytes | Any) -> bytes:
    if isinstance(source, bytes):
        return source
    return bytes(getattr(source, "options", None) or b"")


def current_trace_carrier(source: bytes | Any) -> dict[str, str]:
    """The trace context stored with a job (``{"traceparent": ..., ...}``), ``{}`` when
    it has none. ``source`` is a job's stored options (bytes) or anything carrying
    them as ``.options`` (a ClaimedJob, a JobRecord). Works without OpenTelemetry
    installed: a notification can pass the carrier on as is."""
    raw = _options(source)
    if not raw or TRACE_KEY.encode() not in raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    carrier = data.get(TRACE_KEY) if isinstance(data, dict) else None
    if not isinstance(carrier, dict):
        return {}
    return {k: v for k, v in carrier.items() if isinstance(k, str) and isinstance(v, str)}


def trace_id_of(carrier: Mapping[str, str]) -> str | None:
    """The trace id (32 hex digits) of a W3C ``traceparent`` in ``carrier``, if any."""
    parts = carrier.get("traceparent", "").split("-")
    if len(parts) >= 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        return parts[1].lower()
    return None


def with_carrier(options: bytes, carrier: Mapping[str, str]) -> bytes:
    """A job's stored options with ``carrier`` as its trace context (replacing any)."""
    data: dict[str, Any] = orjson.loads(options) if options else {}
    if carrier:
        data[TRACE_KEY] = dict(carrier)
    else:
        data.pop(TRACE_KEY, None)
    return orjson.dumps(data) if data else b""


def _error_type(exc: BaseException) -> str:
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


class JobTracing:
    """The spans of one app: ``send`` around enqueues, ``process`` around attempts.

    ``tracer_provider``: default the global one (resolved when a span starts, so it
    may be set after the app is created)."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import context, propagate, trace
        except ImportError:
            raise ConfigurationError(
                "tracing needs OpenTelemetry: pip install 'corral[otel]' (or opentelemetry-api)"
            ) from None
        from corral import __version__

        self._context = context
        self._propagate = propagate
        self._trace = trace
        self._tracer = trace.get_tracer("corral", __version__, tracer_provider=tracer_provider)

    # -- producer -------------------------------------------------------------------

    async def send(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        store: Callable[[str, Sequence[NewJob]], Awaitable[list[str | None]]],
    ) -> tuple[list[NewJob], list[str | None]]:
        """``store(queue, jobs)`` (a backend's enqueue) inside a ``send`` span, each job
        carrying the span's context; returns the jobs as stored and what ``store``
        returned."""
        trace = self._trace
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
            "messaging.destination.name": queue,
        }
        if len(jobs) == 1:
            attributes["messaging.message.id"] = jobs[0].id
            attributes["messaging.corral.task"] = jobs[0].name
        else:
            attributes["messaging.batch.message_count"] = len(jobs)
        span = self._tracer.start_span(
            f"send {queue}", kind=trace.SpanKind.PRODUCER, attributes=attributes
        )
        try:
            with trace.use_span(
                span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                carrier: dict[str, str] = {}
                self._propagate.inject(carrier)
                if carrier:
                    jobs = [
                        replace(job, options=with_carrier(job.options, carrier)) for job in jobs
                    ]
                outcomes = await store(queue, jobs)
            if len(jobs) == 1 and outcomes[0] is not None:
                # An existing job stood in (same id or dedupe key): name the one that counts.
                span.set_attribute("messaging.message.id", outcomes[0])
            return list(jobs), outcomes
        except BaseException as exc:
            span.record_exception(exc)
            span.set_attribute("error.type", _error_type(exc))
            span.set_status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            span.end()

    # -- consumer -------------------------------------------------------------------

    def _parent(self, claimed: ClaimedJob) -> Context:
        """The job's creation context; without one an empty context, so the attempt
        is a root span, never a child of whatever the worker was started in."""
        carrier = current_trace_carrier(claimed.options)
        return self._propagate.extract(carrier, context=self._context.Context())

    async def process(self, claimed: ClaimedJob, run: Awaitable[Outcome]) -> Outcome:
        """Await ``run`` (one attempt of ``claimed``) inside its ``process`` span."""
        trace = self._trace
        parent = self._parent(claimed)
        creation = trace.get_current_span(parent).get_span_context()
        links = [trace.Link(creation)] if creation.is_valid else []
        span: Span = self._tracer.start_span(
            f"process {claimed.queue}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.name": "process",
                "messaging.operation.type": "process",
                "messaging.destination.name": claimed.queue,
                "messaging.message.id": claimed.id,
                "messaging.corral.task": claimed.name,
                "messaging.corral.attempt": claimed.attempt,
            },
            links=links,
        )
        # The task body runs in this context (its baggage too); a sync task's thread
        # gets a copy of it with current_job().
        token = self._context.attach(trace.set_span_in_context(span, parent))
        try:
            outcome = await run
            self._finish(span, outcome)
            return outcome
        except BaseException as exc:  # the worker is stopping: the attempt never ended
            span.set_attribute("messaging.corral.outcome", "dropped")
            span.record_exception(exc)
            raise
        finally:
            self._context.detach(token)
            span.end()

    def _finish(self, span: Span, outcome: Outcome) -> None:
        kind = outcome.kind.value
        span.set_attribute("messaging.corral.outcome", _OUTCOMES.get(kind, kind))
        if kind not in ("retry", "failed"):
            return
        exc = outcome.exc
        if exc is not None:
            span.record_exception(exc)
            span.set_attribute("error.type", _error_type(exc))
        else:
            span.set_attribute("error.type", "_OTHER")
        span.set_status(self._trace.StatusCode.ERROR, outcome.error_text)
