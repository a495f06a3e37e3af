"""A stored job's JSON fields, decoded so that one unreadable field cannot hide the job.

A field that does not decode (garbage written to the store, a truncated value) is
flagged in :attr:`StoredFields.corrupt` with its raw text and read as empty; the other
fields and the other jobs of a listing are unaffected, and the job can still be
retried or removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from corral.backends.base import JobRecord
from corral.backends.wire import raw_text
from corral.errors import SerializationError
from corral.serialization import decode

__all__ = ["StoredFields", "read_fields"]


@dataclass(frozen=True, slots=True)
class StoredFields:
    """The decoded JSON fields of one job record."""

    args: list[Any]
    kwargs: dict[str, Any]
    progress: Any
    result: Any
    errors: list[dict[str, Any]]
    #: Fields that could not be decoded -> their raw stored text. ``args`` stands for
    #: the stored ``[args, kwargs]`` payload; ``errors`` lists each unreadable entry.
    corrupt: dict[str, str] = field(default_factory=dict)


def read_fields(record: JobRecord) -> StoredFields:
    """Decode ``record``'s arguments, progress, result and errors; never raises."""
    corrupt: dict[str, str] = {}
    try:
        args, kwargs = decode(record.data)
    except SerializationError:
        args, kwargs = [], {}
        corrupt["args"] = raw_text(record.data)
    progress = _value("progress", record.progress, corrupt)
    result = _value("result", record.result, corrupt)
    return StoredFields(args, kwargs, progress, result, _errors(record.errors, corrupt), corrupt)


def _value(name: str, raw: bytes | None, corrupt: dict[str, str]) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        corrupt[name] = raw_text(raw)
        return None


def _errors(entries: Sequence[bytes], corrupt: dict[str, str]) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    unreadable: list[str] = []
    for raw in entries:
        try:
            error = orjson.loads(raw)
        except orjson.JSONDecodeError:
            error = None
        if not isinstance(error, dict):
            unreadable.append(raw_text(raw))
            error = {
                "type": "Unreadable",
                "message": "the stored error is not a JSON object",
                "raw": unreadable[-1],
            }
        errors.append(error)
    if unreadable:
        corrupt["errors"] = "\n".join(unreadable)
    return errors
