"""How a worker process writes its log: text lines (the default) or JSON lines.

:class:`JsonFormatter` writes each record as one JSON object: ``timestamp`` (UTC,
ISO 8601), ``level``, ``logger``, ``message``; a job's outcome line (logger
``corral.job``) adds ``job_id``, ``task``, ``queue``, ``attempt``, ``outcome``
(completed, retrying, failed, cancelled), ``duration`` (seconds), ``error_type`` and
``error_message`` when it failed, and ``trace_id`` when the job carries a trace
context. A record logged inside a running task gets the job's fields too, and the
``trace_id``/``span_id`` of the active OpenTelemetry span.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from corral.context import _current as _current_job
from corral.errors import ConfigurationError
from corral.tracing import current_trace_carrier, trace_id_of

__all__ = ["LOG_FORMATS", "TEXT_FORMAT", "JsonFormatter", "configure_logging"]

#: What ``corral worker --log-format`` accepts.
LOG_FORMATS: Final = ("text", "json")
#: The text format's line.
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _span_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the active span, when OpenTelemetry is in use."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:  # never imported: no span can be active
        return None
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return None
    return f"{span.trace_id:032x}", f"{span.span_id:016x}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module's docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        job: dict[str, Any] | None = getattr(record, "corral_job", None)
        if job is not None:
            line.update(job)
            trace_id = trace_id_of(current_trace_carrier(getattr(record, "corral_options", b"")))
            if trace_id:
                line["trace_id"] = trace_id
        else:
            running = _current_job.get(None)
            if running is not None:
                line.update(
                    job_id=running.id,
                    task=running.name,
                    queue=running.queue,
                    attempt=running.attempt,
                )
        if "trace_id" not in line and (ids := _span_ids()) is not None:
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str, log_format: str = "text") -> None:
    """Send every log record to stderr at ``level`` and above, as text or JSON lines
    (a JSON worker's warnings go through logging too)."""
    if log_format not in LOG_FORMATS:
        raise ConfigurationError(
            f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}"
        )
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        logging.captureWarnings(True)
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
