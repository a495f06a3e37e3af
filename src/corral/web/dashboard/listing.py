"""The queue page's search form: its fields, read from a query string into a
:class:`~corral.search.JobFilter` (or a message naming the field that is wrong), and
written back into links (paging, "continue", back from a bulk action)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from corral.errors import ValidationError
from corral.search import JobFilter

__all__ = ["Criteria"]

_TEXT = ("task", "text", "error", "group")


def _moment(field: str, value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"{field}: {value!r} is not a date and time (like 2026-12-04T09:30, UTC)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Criteria:
    """The search form as submitted (text as typed; empty = not given)."""

    state: str = "waiting"
    task: str = ""
    text: str = ""
    error: str = ""
    group: str = ""
    since: str = ""
    until: str = ""

    @property
    def searching(self) -> bool:
        """Whether any criterion beyond the state is given."""
        return any((self.task, self.text, self.error, self.group, self.since, self.until))

    def to_filter(self) -> JobFilter:
        """The filter; ValidationError naming the field that is wrong."""
        return JobFilter(
            self.state,
            **{name: getattr(self, name).strip() or None for name in _TEXT},
            since=_moment("since", self.since.strip()),
            until=_moment("until", self.until.strip()),
        )

    def query(self, **extra: str) -> str:
        """These criteria (the given ones) and ``extra`` as a query string."""
        fields = {k: v for k, v in asdict(self).items() if v}
        return urlencode({**fields, **{k: v for k, v in extra.items() if v}})

    def described(self) -> str:
        """The criteria in words, for a confirmation ("task = emails.*, error ~ timeout")."""
        words = {
            "task": "task = {}",
            "text": "arguments or id contain “{}”",
            "error": "last error contains “{}”",
            "group": "group = {}",
            "since": "created at or after {} UTC",
            "until": "created before {} UTC",
        }
        parts = [words[k].format(getattr(self, k).strip()) for k in words if getattr(self, k)]
        return ", ".join(parts)
