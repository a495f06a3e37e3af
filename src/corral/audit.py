"""The audit log: who (an API key's name) did what (an action) to which queue or job,
and when. The HTTP API and the dashboard record every write and admin action; read it
with :meth:`Corral.audit_entries`, ``GET /api/v1/audit`` or ``corral audit``.

Entries older than the app's ``audit_retention`` (30 days by default) are dropped as
new ones are written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from corral._sync import run_sync
from corral.backends.records import AuditRecord
from corral.errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    from corral.backends.base import Backend

__all__ = ["DEFAULT_AUDIT_RETENTION", "AuditEntry", "AuditLog", "audit_retention_ms"]

DEFAULT_AUDIT_RETENTION = timedelta(days=30)
MAX_DETAIL_BYTES = 8 * 1024
MAX_LIMIT = 1000
_ACTION = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


def audit_retention_ms(value: object) -> int:
    """``audit_retention`` (a timedelta or seconds) in ms; ConfigurationError unless it
    is positive."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ConfigurationError(
            f"audit_retention must be a positive timedelta or number of seconds, got {value!r}"
        )
    return max(1, int(seconds * 1000))


def _text(name: str, value: object, limit: int, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"audit {name} must be text, got {type(value).__name__}")
    if (not value and not empty) or len(value) > limit:
        raise ValidationError(f"audit {name} must be 1 to {limit} characters, got {len(value)}")
    return value


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit entry: ``id`` (pass it as ``before`` for the next older page), when
    (``at``, UTC), who (``key``: the API key's name), ``action``, ``target`` (a queue, or
    ``queue/job id``) and ``detail`` (any JSON value, or None)."""

    id: str
    at: datetime
    key: str
    action: str
    target: str
    detail: Any

    @classmethod
    def from_record(cls, record: AuditRecord) -> AuditEntry:
        try:
            detail = orjson.loads(record.detail) if record.detail else None
        except orjson.JSONDecodeError:
            detail = record.detail.decode(errors="replace")
        at = datetime.fromtimestamp(record.at / 1000, UTC)
        return cls(record.id, at, record.key, record.action, record.target, detail)

    def to_dict(self) -> dict[str, Any]:
        """As the HTTP API and ``corral audit --json`` show it."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "key": self.key,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
        }


class AuditLog:
    """The audit methods of :class:`Corral` (a mixin: the app provides the backend)."""

    audit_retention: timedelta

    async def backend(self) -> Backend:
        raise NotImplementedError

    async def record_audit(self, key: str, action: str, target: str, detail: Any = None) -> str:
        """Record that ``key`` (an API key's name) did ``action`` (lower-case, like
        ``"job.retry"``) to ``target``, with an optional JSON ``detail``; returns the
        entry's id. Raises ValidationError naming a bad field (text over its length,
        detail not JSON or over 8 KiB).

        >>> await app.record_audit("ops", "queue.pause", "emails", {"reason": "smtp down"})
        """
        _text("key", key, 200)
        if not isinstance(action, str) or not _ACTION.fullmatch(action):
            raise ValidationError(
                f"audit action must be lower-case letters, digits and . _ - (at most 64, "
                f"starting with a letter), got {action!r}"
            )
        _text("target", target, 500, empty=True)
        try:
            encoded = b"" if detail is None else orjson.dumps(detail)
        except TypeError as exc:
            raise ValidationError(f"audit detail is not JSON: {exc}") from None
        if len(encoded) > MAX_DETAIL_BYTES:
            raise ValidationError(
                f"audit detail is {len(encoded)} bytes encoded; the limit is {MAX_DETAIL_BYTES}"
            )
        keep = audit_retention_ms(self.audit_retention)
        backend = await self.backend()
        return await backend.add_audit(key, action, target, encoded, keep)

    async def audit_entries(self, limit: int = 100, before: str | None = None) -> list[AuditEntry]:
        """The latest ``limit`` (1 to 1000) audit entries, newest first; ``before`` (an
        entry's ``id``) pages to older ones. Raises ValidationError for a bad limit or
        an id the store cannot have given."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValidationError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
        if before is not None and not isinstance(before, str):
            raise ValidationError(f"before must be an audit entry id, got {before!r}")
        backend = await self.backend()
        return [AuditEntry.from_record(r) for r in await backend.audit_entries(limit, before)]

    def audit_entries_sync(self, limit: int = 100, before: str | None = None) -> list[AuditEntry]:
        """Blocking twin of :meth:`audit_entries`."""
        return run_sync(self.audit_entries(limit, before))

    def record_audit_sync(self, key: str, action: str, target: str, detail: Any = None) -> str:
        """Blocking twin of :meth:`record_audit`."""
        return run_sync(self.record_audit(key, action, target, detail))
