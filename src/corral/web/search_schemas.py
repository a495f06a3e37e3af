"""Bodies and answers of the search and bulk routes (``GET /queues/{q}/jobs`` with
filters, ``POST /queues/{q}/bulk``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from corral.search import BULK_ACTIONS
from corral.web.schemas import JobOut, State

__all__ = ["CURSOR", "BulkFilter", "BulkOut", "BulkRequest", "Moment", "SearchOut", "Text"]

#: A cursor as this API hands them out (url-safe base64); only the server can tell
#: whether one is real, so a made-up one of this shape answers 422 naming ``cursor``.
CURSOR = r"^[A-Za-z0-9_-]{1,2000}$"

Text = Annotated[str, Field(min_length=1, max_length=200)]

_NUMBER = re.compile(r"\s*[-+]?[0-9.]+(e[-+]?[0-9]+)?\s*", re.IGNORECASE)


def _iso_text(value: object) -> object:
    # pydantic would also read a number as seconds since 1970; the schema says
    # date-time text, so a number is refused rather than taken as 1970.
    if not isinstance(value, str | datetime) or (
        isinstance(value, str) and _NUMBER.fullmatch(value)
    ):
        raise ValueError("must be an ISO 8601 date-time, like 2026-01-31T09:00:00Z")
    return value


#: An ISO 8601 date-time (naive ones are UTC).
Moment = Annotated[datetime, BeforeValidator(_iso_text)]


class SearchOut(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(
        description="pass as ?cursor= (with the same filters) to search on; null once the "
        "state was read to its end"
    )
    scanned: int = Field(description="jobs read by this call")
    bound: int = Field(description="the most jobs one call reads (?scan=)")
    exhausted: bool = Field(description="the state was read to its end")


class BulkFilter(BaseModel):
    """Which jobs: those of ``state`` meeting every criterion given."""

    model_config = ConfigDict(extra="forbid")

    state: State
    task: Text | None = Field(None, description="task name, or a pattern with * and ?")
    group: Text | None = None
    error: Text | None = Field(None, description="text in the last error (any case)")
    text: Text | None = Field(None, description="text in the arguments or id (any case)")
    since: Moment | None = Field(None, description="enqueued at or after (ISO 8601)")
    until: Moment | None = Field(None, description="enqueued before (ISO 8601)")
    job_id: Text | None = None


def _given(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def _action_states(action: str) -> dict[str, Any]:
    """JSON Schema: with this action, a filter's state is one it applies to."""
    states = sorted(s.value for s in BULK_ACTIONS[action])
    return {
        "if": {"required": ["action"], "properties": {"action": {"const": action}}},
        "then": {"properties": {"filter": {"properties": {"state": {"enum": states}}}}},
    }


_BULK_RULES: dict[str, Any] = {
    "allOf": [
        {"not": {"allOf": [_given("ids"), _given("filter")]}},
        {"anyOf": [_given("ids"), _given("filter")]},
        *(_action_states(a) for a in BULK_ACTIONS),
    ]
}


class BulkRequest(BaseModel):
    """An action on the jobs ``ids`` names, or on every job ``filter`` matches (exactly
    one of the two)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_BULK_RULES)

    action: Literal["retry", "cancel", "remove", "promote"]
    ids: list[Text] | None = Field(None, min_length=1, max_length=10_000)
    filter: BulkFilter | None = None


class BulkOut(BaseModel):
    matched: int = Field(description="jobs found")
    changed: int = Field(description="jobs the action was applied to")
    skipped: int = Field(description="jobs left as they were (the action does not apply)")
