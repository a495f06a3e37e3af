"""Paging, searching and bulk actions over a queue's jobs: what they take and return.

``Queue.page`` reads one state a page at a time; ``Queue.search`` reads it through a
:class:`JobFilter`, at most ``scan`` jobs per call, so a search over a million jobs
answers in bounded time and tells how far it got; ``Queue.bulk`` acts on a list of
ids or on every job a filter matches. Both hand out an opaque, url-safe cursor: pass
it back to read on from the last job returned. Jobs that stay in the state are read
exactly once however others move (keyset paging, see ``corral.backends.paging``).

Example::

    page = await queue.search(JobFilter("failed", task="emails.*", error="timeout"))
    while page.next_cursor:
        page = await queue.search(flt, cursor=page.next_cursor)
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Literal

import orjson

from corral.backends.base import JobRecord, JobState, Position
from corral.errors import ValidationError

if TYPE_CHECKING:
    from corral.job import Job

__all__ = [
    "BULK_ACTIONS",
    "BulkAction",
    "BulkResult",
    "JobFilter",
    "JobPage",
    "SearchPage",
    "decode_cursor",
    "encode_cursor",
]

BulkAction = Literal["retry", "cancel", "remove", "promote"]
#: Each bulk action and the states it applies to.
BULK_ACTIONS: dict[str, frozenset[JobState]] = {
    "retry": frozenset({JobState.FAILED, JobState.CANCELLED}),
    "cancel": frozenset({JobState.WAITING, JobState.DELAYED, JobState.ACTIVE}),
    "remove": frozenset(set(JobState) - {JobState.ACTIVE}),
    "promote": frozenset({JobState.DELAYED}),
}

_MAX_TEXT = 200
_CURSOR_VERSION = 1
_INT64 = 2**63


def job_state(value: object, field: str = "state") -> JobState:
    """``value`` as a JobState, or a ValidationError naming ``field``."""
    try:
        if isinstance(value, str):
            return JobState(value)
    except ValueError:
        pass
    names = ", ".join(s.value for s in JobState)
    raise ValidationError(f"{field}: unknown job state {value!r}; use one of {names}")


def _text(field: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise ValidationError(f"{field} must be text of 1-{_MAX_TEXT} characters, got {value!r}")
    return value


def _moment(field: str, value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(f"{field} must be a datetime, got {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs of one state a search or bulk action takes; criteria combine (and).

    ``task``: the task name, or a pattern with ``*``/``?`` (``"emails.*"``).
    ``group``: the group (tenant). ``error``: text in the last recorded error (type or
    message, any case). ``text``: text in the job's arguments (JSON) or id, any case.
    ``since``/``until``: enqueued at or after / before (naive datetimes are UTC).
    ``job_id``: that one job (found directly, no scan). Raises ValidationError (a
    ValueError) naming the field that is wrong.
    """

    state: JobState | str
    task: str | None = None
    group: str | None = None
    error: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    job_id: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "state", job_state(self.state))
        for field in ("task", "group", "error", "text", "job_id"):
            set_(self, field, _text(field, getattr(self, field)))
        for field in ("since", "until"):
            set_(self, field, _moment(field, getattr(self, field)))
        if self.since and self.until and self.since >= self.until:
            raise ValidationError("since must be before until")

    @property
    def job_state(self) -> JobState:
        """``state`` as a JobState (it is one after validation)."""
        return JobState(self.state)

    def matches(self, job: JobRecord) -> bool:
        """Whether ``job`` meets every criterion (its state included)."""
        if job.state is not self.state or (self.job_id and job.id != self.job_id):
            return False
        if self.task and not (
            fnmatchcase(job.name, self.task) if _wild(self.task) else job.name == self.task
        ):
            return False
        if self.group and job.group != self.group:
            return False
        if self.since or self.until:
            created = job.created_at or 0
            if self.since and created < _ms(self.since):
                return False
            if self.until and created >= _ms(self.until):
                return False
        if self.error:
            last = job.errors[-1] if job.errors else b""
            if self.error.casefold() not in last.decode("utf-8", "replace").casefold():
                return False
        if self.text:
            needle = self.text.casefold()
            data = job.data.decode("utf-8", "replace").casefold()
            if needle not in data and needle not in job.id.casefold():
                return False
        return True


def _wild(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a state: its jobs, and the cursor of the next page (None: last)."""

    jobs: list[Job]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """What one search call found. ``scanned`` jobs were read of at most ``bound``;
    ``exhausted``: the state was read to its end (else search on with
    ``next_cursor``, even when ``jobs`` is empty)."""

    jobs: list[Job]
    next_cursor: str | None
    scanned: int
    bound: int
    exhausted: bool


@dataclass(frozen=True, slots=True)
class BulkResult:
    """A bulk action: ``matched`` jobs were found, ``changed`` of them were acted on,
    ``skipped`` were not (gone, or in a state the action does not apply to)."""

    matched: int
    changed: int
    skipped: int


def encode_cursor(state: JobState, position: Position) -> str:
    """A url-safe cursor for the page after ``position`` in ``state``."""
    raw = orjson.dumps([_CURSOR_VERSION, state.value, list(position)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, state: JobState) -> Position:
    """The position a cursor from :func:`encode_cursor` holds; ValidationError naming
    ``cursor`` when it is damaged, made up, or from a listing of another state."""
    bad = ValidationError("cursor is not one this queue handed out (damaged or made up)")
    if not isinstance(cursor, str) or len(cursor) > 2000:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, of_state, position = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise bad from None
    if version != _CURSOR_VERSION or not isinstance(position, list):
        raise bad
    if of_state != state.value:
        raise ValidationError(f"cursor is for {of_state!r} jobs, not {state.value!r}")
    if not position or not all(
        type(v) is str or (type(v) is int and -_INT64 <= v < _INT64) for v in position
    ):
        raise bad  # (an int past 64 bits would be an overflow in SQLite, not a 4xx)
    return tuple(position)
