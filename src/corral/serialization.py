"""JSON in and out (orjson), with errors that name the offending argument.

Payloads and results are JSON, never pickle: anyone who can write to the store
could otherwise run code in every worker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from corral.errors import PayloadTooLarge, SerializationError

__all__ = ["decode", "dumps", "encode_call", "loads"]

_Value = Any


def dumps(value: _Value, *, what: str = "value") -> bytes:
    """Encode one value; raises SerializationError naming ``what``."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise SerializationError(f"{what} is not JSON-serialisable: {exc}") from None


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
    that is not JSON and PayloadTooLarge for a payload over ``limit`` bytes.
    """
    try:
        data = orjson.dumps([args, kwargs])
    except TypeError:
        for label, value in _labelled(args, kwargs, names):
            dumps(value, what=f"argument {label} of task {task!r}")
        raise SerializationError(
            f"the arguments of task {task!r} are not JSON-serialisable"
        ) from None
    if b"null" in data:  # orjson writes NaN and Infinity as null: refuse them instead
        for label, value in _labelled(args, kwargs, names):
            _refuse_non_finite(value, f"argument {label} of task {task!r}")
    if len(data) > limit:
        sizes = [(len(orjson.dumps(v)), label) for label, v in _labelled(args, kwargs, names)]
        largest = max(sizes, default=(0, "?"))
        raise PayloadTooLarge(
            f"the arguments of task {task!r} encode to {len(data):,} bytes, over the limit of "
            f"{limit:,} bytes (largest: argument {largest[1]}, {largest[0]:,} bytes); store "
            "the data elsewhere and pass a reference, or raise max_payload_bytes"
        )
    return data


def _refuse_non_finite(value: _Value, what: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SerializationError(f"{what} contains {value}, which JSON cannot represent")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_non_finite(item, what)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_non_finite(item, what)


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
