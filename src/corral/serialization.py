"""JSON in and out (orjson), with errors that name the offending argument.

Payloads and results are JSON, never pickle: anyone who can write to the store
could otherwise run code in every worker.

What a task receives equals what was enqueued, and what ``job.result()`` returns
equals what the task returned: a value that JSON would change on the way (a
``datetime`` or ``UUID`` that arrives as a string, a tuple that arrives as a list, a
``Decimal``, a dataclass, NaN) is refused with an error naming the argument and the
place inside it, instead of arriving changed. Each encoding is checked by decoding
it and comparing with the original (both in C, so cheap for typical payloads); the
slow walk that finds the culprit runs only when that check fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any
from uuid import UUID

import orjson

from corral.errors import PayloadTooLarge, SerializationError

__all__ = ["decode", "dumps", "encode_call", "encode_result", "loads"]

_Value = Any


def dumps(value: _Value, *, what: str = "value") -> bytes:
    """Encode one value that JSON carries unchanged; raises SerializationError
    naming ``what`` (and the place inside it) otherwise."""
    data = _encode(value)
    if data is None:
        raise SerializationError(_explain(value, what))
    return data


def loads(data: bytes | str) -> _Value:
    """Decode JSON text (bytes or str)."""
    return orjson.loads(data)


def encode_call(
    task: str,
    args: Sequence[_Value],
    kwargs: Mapping[str, _Value],
    limit: int,
    names: Sequence[str] = (),
) -> bytes:
    """Encode ``[args, kwargs]`` for storage.

    ``names`` gives parameter names for positional arguments so errors can say
    "argument 'to'" rather than "argument 0". Raises SerializationError for a value
    that JSON would not carry unchanged and PayloadTooLarge for a payload over
    ``limit`` bytes.
    """
    call = [list(args), dict(kwargs)]
    data = _encode(call)
    if data is None:
        for label, value in _labelled(args, kwargs, names):
            if _encode(value) is None:
                raise SerializationError(_explain(value, f"argument {label} of task {task!r}"))
        raise SerializationError(f"the arguments of task {task!r} are not JSON-serialisable")
    if len(data) > limit:
        sizes = [(len(orjson.dumps(v)), label) for label, v in _labelled(args, kwargs, names)]
        largest = max(sizes, default=(0, "?"))
        raise PayloadTooLarge(
            f"the arguments of task {task!r} encode to {len(data):,} bytes, over the limit of "
            f"{limit:,} bytes (largest: argument {largest[1]}, {largest[0]:,} bytes); store "
            "the data elsewhere and pass a reference, or raise max_payload_bytes"
        )
    return data


def encode_result(value: _Value, task: str, limit: int) -> bytes:
    """Encode a task's return value; raises SerializationError (a value JSON would
    change) or PayloadTooLarge (over ``limit`` bytes), both naming the task."""
    data = dumps(value, what=f"the result of task {task!r}")
    if len(data) > limit:
        raise PayloadTooLarge(
            f"the result of task {task!r} encodes to {len(data):,} bytes, over the limit of "
            f"{limit:,} bytes; store the data elsewhere and return a reference, or raise "
            "max_result_bytes"
        )
    return data


def _encode(value: _Value) -> bytes | None:
    """The JSON of ``value`` if decoding it gives back an equal value, else None."""
    if value is None:
        return b"null"
    try:
        data = orjson.dumps(value)
    except TypeError:
        return None
    # NaN decodes as None, a tuple as a list, a datetime or UUID as a str: all unequal.
    return data if orjson.loads(data) == value else None


def _explain(value: _Value, what: str) -> str:
    path, culprit = _culprit(value, "")
    where = f" at {path}" if path else ""
    if isinstance(culprit, float) and not math.isfinite(culprit):
        return f"{what}{where} is {culprit}, which JSON cannot represent"
    return f"{what}{where} is a {type(culprit).__name__}, {_advice(culprit)}"


def _culprit(value: _Value, path: str) -> tuple[str, _Value]:
    """The path to, and the value of, the first part of ``value`` JSON would change."""
    if isinstance(value, list) and type(value) is list:
        for i, item in enumerate(value):
            if _encode(item) is None:
                return _culprit(item, f"{path}[{i}]")
    elif isinstance(value, dict) and type(value) is dict:
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}[{key!r}]", key
            if _encode(item) is None:
                return _culprit(item, f"{path}[{key!r}]")
    return path, value


def _advice(value: _Value) -> str:
    if isinstance(value, tuple):
        return "which JSON turns into a list: pass a list"
    if isinstance(value, datetime | date | time):
        return "which JSON would turn into a string: pass .isoformat() and parse it in the task"
    if isinstance(value, UUID):
        return "which JSON would turn into a string: pass str(value)"
    return (
        "which JSON cannot carry unchanged: pass plain JSON values "
        "(str, int, float, bool, None, list, dict with str keys)"
    )


def _labelled(
    args: Sequence[_Value], kwargs: Mapping[str, _Value], names: Sequence[str]
) -> list[tuple[str, _Value]]:
    labels = [(repr(names[i]) if i < len(names) else str(i), v) for i, v in enumerate(args)]
    return labels + [(repr(k), v) for k, v in kwargs.items()]


def decode(data: bytes) -> tuple[list[_Value], dict[str, _Value]]:
    """Decode a stored ``[args, kwargs]`` payload; raises SerializationError if malformed."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"stored arguments are not valid JSON: {exc}") from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], list)
        or not isinstance(value[1], dict)
    ):
        raise SerializationError("stored arguments must be a JSON array [args, kwargs]")
    return value[0], value[1]
