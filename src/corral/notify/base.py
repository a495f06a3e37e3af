"""What every notification target shares: the notice it delivers, how it reports a
failed delivery, and the settings a worker delivers with.

A :class:`Notice` is a job's outcome as it was recorded in the same atomic step that
ended the job (the outbox entry); it is delivered by a Corral job on the system queue
``corral.notify`` (see :mod:`corral.notify.outbox`), so a delivery is retried, backed
off and dead-lettered like any job, and carries the same :attr:`Notice.id` on every
attempt for the receiver to dedupe on.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal

from corral.errors import ConfigurationError, CorralError, error_summary

__all__ = [
    "NOTICE_EVENTS",
    "DeliveryError",
    "Notice",
    "NoticeEvent",
    "NotifySettings",
    "Target",
]

NoticeEvent = Literal["completed", "failed", "cancelled"]
#: The job outcomes a notification can be sent for (``failed``: for good).
NOTICE_EVENTS: Final = ("completed", "failed", "cancelled")


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Notice:
    """One job outcome to notify about.

    ``id`` is stable: every attempt to deliver this notice (to one target) carries it
    (the ``webhook-id`` header, the email's ``Message-ID``). Times are Unix seconds.
    ``result`` is the task's return value (``completed``); ``error`` the last error
    record (``type``, ``message``, ``traceback``...). ``trace`` is the W3C trace context
    of the job (``traceparent``...), empty without tracing.
    """

    id: str
    event: NoticeEvent
    job_id: str
    queue: str
    task: str
    attempt: int
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: Mapping[str, Any] | None = None
    trace: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The notice as stored in its delivery job."""
        return {
            "id": self.id,
            "event": self.event,
            "job_id": self.job_id,
            "queue": self.queue,
            "task": self.task,
            "attempt": self.attempt,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": self.result,
            "error": dict(self.error) if self.error else None,
            "trace": dict(self.trace),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notice:
        """Rebuild a notice from :meth:`to_json`."""
        return cls(
            id=str(data["id"]),
            event=data["event"],
            job_id=str(data["job_id"]),
            queue=str(data["queue"]),
            task=str(data["task"]),
            attempt=int(data["attempt"]),
            created_at=data.get("created_at"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            result=data.get("result"),
            error=data.get("error"),
            trace=data.get("trace") or {},
        )

    @property
    def type(self) -> str:
        """The event type as webhooks name it: ``job.completed``..."""
        return f"job.{self.event}"

    @property
    def error_message(self) -> str:
        """``Type: message`` of the error ("" without one)."""
        return error_summary(self.error)

    def body(self, *, result: bool = False, traceback: bool = False) -> dict[str, Any]:
        """The JSON a notification carries: thin by default (ids, task, queue, state,
        attempt, times, the error's type and message); the result and the traceback
        only when asked for."""
        data: dict[str, Any] = {
            "id": self.job_id,
            "queue": self.queue,
            "task": self.task,
            "state": self.event,
            "attempt": self.attempt,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }
        if self.error:
            error = {"type": self.error.get("type"), "message": self.error.get("message")}
            if traceback:
                error["traceback"] = self.error.get("traceback")
            data["error"] = error
        if result and self.event == "completed":
            data["result"] = self.result
        return {
            "type": self.type,
            "timestamp": _iso(self.finished_at),
            "data": data,
        }


class DeliveryError(CorralError):
    """A delivery attempt failed. ``retry``: worth trying again later (a timeout, a
    5xx, an SMTP 4xx); ``gone``: the endpoint asked never to be called again (HTTP 410)
    and is disabled. The message names what happened (status, server reply)."""

    def __init__(self, message: str, *, retry: bool = True, gone: bool = False) -> None:
        super().__init__(message)
        self.retry = retry and not gone
        self.gone = gone


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """How a worker delivers notifications (``Corral(notify=NotifySettings(...))``).

    ``allow``: hosts, IP addresses or CIDR ranges a webhook may reach even though the
    SSRF guard refuses them (loopback, private ranges...). ``smtp_url``: the mail relay
    (default ``CORRAL_SMTP_URL``); ``sender``: the From address (default
    ``CORRAL_EMAIL_FROM``). ``context``: values every email template sees (a
    ``dashboard_url``...). ``templates``: a directory of Jinja2 templates for
    ``Email(template=...)``. ``failure_limit`` failure emails per task per
    ``failure_window`` seconds are sent; the rest are folded into one digest.
    ``timeout``: seconds for one delivery attempt. ``retries``: the waits (seconds)
    before each retry of a failed delivery (Svix's schedule: 5 s, 5 min, 30 min, 2 h,
    5 h, 10 h, 10 h), after which the delivery is dead-lettered.
    """

    allow: tuple[str, ...] = ()
    smtp_url: str | None = None
    sender: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    templates: str | None = None
    failure_limit: int = 5
    failure_window: float = 600.0
    timeout: float = 10.0
    retries: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)

    def __post_init__(self) -> None:
        if isinstance(self.allow, str):  # type: ignore[unreachable]
            raise ConfigurationError("NotifySettings(allow=...) must be a list of hosts or ranges")
        if self.failure_limit < 0:
            raise ConfigurationError(f"failure_limit must be >= 0, got {self.failure_limit!r}")
        if self.failure_window <= 0:
            raise ConfigurationError(f"failure_window must be > 0 s, got {self.failure_window!r}")
        if self.timeout <= 0:
            raise ConfigurationError(f"timeout must be > 0 s, got {self.timeout!r}")
        if any(
            isinstance(w, bool) or not isinstance(w, int | float) or w < 0 for w in self.retries
        ):
            raise ConfigurationError(f"retries must be waits in seconds >= 0, got {self.retries!r}")

    @property
    def relay_url(self) -> str | None:
        """The SMTP relay URL: ``smtp_url``, else ``CORRAL_SMTP_URL``."""
        return self.smtp_url or os.environ.get("CORRAL_SMTP_URL") or None

    @property
    def from_address(self) -> str | None:
        """The From address: ``sender``, else ``CORRAL_EMAIL_FROM``."""
        return self.sender or os.environ.get("CORRAL_EMAIL_FROM") or None


class Target(abc.ABC):
    """Where notifications go (a :class:`~corral.notify.webhook.Webhook`, an
    :class:`~corral.notify.email.Email`). ``events`` are the outcomes it wants."""

    #: ``"webhook"``, ``"email"``: names the kind in stored delivery jobs.
    kind: ClassVar[str]
    events: frozenset[str]

    @property
    @abc.abstractmethod
    def key(self) -> str:
        """A stable identity (same target, same key across processes and deploys):
        part of each delivery's job id, and the name its endpoint state is kept under."""

    @property
    def label(self) -> str:
        """How messages name the target (a URL's host, the recipients)."""
        return self.key

    @abc.abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The target as JSON (secrets included: stored with a per-job target)."""

    @classmethod
    @abc.abstractmethod
    def from_json(cls, data: Mapping[str, Any]) -> Target:
        """Rebuild a target from :meth:`to_json` (ConfigurationError when invalid)."""

    @abc.abstractmethod
    async def deliver(self, notice: Notice, settings: NotifySettings) -> None:
        """Deliver ``notice`` once; raise :class:`DeliveryError` when it did not arrive."""


def check_events(events: object, what: str) -> frozenset[str]:
    """``events`` as a set of known outcome names, else ConfigurationError naming them."""
    if isinstance(events, str) or not hasattr(events, "__iter__"):
        raise ConfigurationError(f"{what}: events must be a list of {list(NOTICE_EVENTS)}")
    chosen = frozenset(events)
    unknown = sorted(str(e) for e in chosen - set(NOTICE_EVENTS))
    if unknown or not chosen:
        raise ConfigurationError(
            f"{what}: events must be some of {list(NOTICE_EVENTS)}, got {sorted(map(str, chosen))}"
        )
    return chosen
