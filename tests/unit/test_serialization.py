"""JSON encoding of calls and results, and the errors that name the culprit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from uuid import UUID

import orjson
import pytest

from corral.errors import PayloadTooLarge, SerializationError, ValidationError
from corral.serialization import decode, dumps, encode_call, encode_result, loads

LIMIT = 512 * 1024


class Colour(Enum):
    RED = "red"


class Size(StrEnum):
    BIG = "big"


class Level(IntEnum):
    HIGH = 2


@dataclass
class Point:
    x: int
    y: int


def test_encode_call_round_trips() -> None:
    data = encode_call("t", ("a@b.c", 3), {"flag": True, "tags": ["x"]}, LIMIT, ["to", "n"])
    assert decode(data) == (["a@b.c", 3], {"flag": True, "tags": ["x"]})


def test_encode_call_without_arguments() -> None:
    assert decode(encode_call("t", (), {}, LIMIT)) == ([], {})


def test_positional_error_names_the_parameter() -> None:
    with pytest.raises(SerializationError) as info:
        encode_call("emails.send", ("ok", {1, 2}), {}, LIMIT, ["subject", "to"])
    message = str(info.value)
    assert "argument 'to'" in message
    assert "'emails.send'" in message
    assert "'subject'" not in message


def test_keyword_error_names_the_keyword() -> None:
    with pytest.raises(SerializationError, match="argument 'when'"):
        encode_call("t", (), {"when": object()}, LIMIT, [])


def test_positional_error_without_names_uses_the_index() -> None:
    with pytest.raises(SerializationError, match="argument 1 "):
        encode_call("t", (1, {3}), {}, LIMIT)


def test_extra_positional_beyond_the_names_uses_the_index() -> None:
    # e.g. a *args parameter: names only cover the named positionals
    with pytest.raises(SerializationError, match="argument 2 "):
        encode_call("t", (1, 2, b"bytes"), {}, LIMIT, ["a", "b"])


def test_the_first_bad_argument_is_named() -> None:
    with pytest.raises(SerializationError) as info:
        encode_call("t", (1, object(), {2}), {}, LIMIT, ["a", "b", "c"])
    assert "argument 'b'" in str(info.value)


def test_non_string_dict_keys_are_rejected() -> None:
    with pytest.raises(SerializationError, match="argument 'mapping'"):
        encode_call("t", ({1: "a"},), {}, LIMIT, ["mapping"])


def test_serialization_error_is_a_validation_and_type_error() -> None:
    with pytest.raises(ValidationError):
        encode_call("t", ({1},), {}, LIMIT)
    with pytest.raises(TypeError):
        encode_call("t", ({1},), {}, LIMIT)


def test_payload_too_large_names_size_limit_and_largest_argument() -> None:
    args = ("small", "x" * 2000)
    kwargs = {"note": "y" * 100}
    size = len(orjson.dumps([args, kwargs]))
    with pytest.raises(PayloadTooLarge) as info:
        encode_call("files.upload", args, kwargs, 1000, ["name", "body"])
    message = str(info.value)
    assert f"{size:,} bytes" in message
    assert "1,000 bytes" in message
    assert "largest: argument 'body'" in message
    assert f"{len(orjson.dumps('x' * 2000)):,} bytes" in message
    assert "'files.upload'" in message


def test_payload_too_large_can_blame_a_keyword() -> None:
    with pytest.raises(PayloadTooLarge, match="largest: argument 'blob'"):
        encode_call("t", (1,), {"blob": "z" * 500}, 100, ["n"])


def test_payload_exactly_at_the_limit_is_accepted() -> None:
    size = len(orjson.dumps([["abc"], {}]))
    assert decode(encode_call("t", ("abc",), {}, size)) == (["abc"], {})
    with pytest.raises(PayloadTooLarge):
        encode_call("t", ("abc",), {}, size - 1)


def test_dumps_names_what_failed() -> None:
    with pytest.raises(SerializationError, match="the result of task 'x' is a set"):
        dumps({1, 2}, what="the result of task 'x'")
    assert loads(dumps({"a": [1, None]})) == {"a": [1, None]}


def test_loads_accepts_str_and_bytes() -> None:
    assert loads(b"[1]") == loads("[1]") == [1]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"{}",
        b"[]",
        b"[1, 2]",
        b"[[], {}, 3]",
        b"[{}, []]",
        b"[[], []]",
        b'"text"',
        b"null",
        b"[[1], {}",
    ],
)
def test_decode_rejects_malformed_payloads(data: bytes) -> None:
    with pytest.raises(SerializationError, match="stored arguments"):
        decode(data)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {"deep": [1.0, float("-inf")]}])
def test_non_finite_floats_are_refused_not_turned_into_null(bad: object) -> None:
    with pytest.raises(
        SerializationError,
        match=r"argument 'x' of task 't'.* is -?(nan|inf), which JSON cannot represent",
    ):
        encode_call("t", [bad], {}, 10_000, names=["x"])


def test_a_real_null_is_fine() -> None:
    assert encode_call("t", [None], {"k": None}, 10_000) == b'[[null],{"k":null}]'


# -- what a task receives equals what was enqueued (issue 15) ---------------------------


@pytest.mark.parametrize(
    ("value", "kind", "hint"),
    [
        (datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))), "datetime", "isoformat"),
        (date(2026, 3, 1), "date", "isoformat"),
        (UUID("12345678-1234-5678-1234-567812345678"), "UUID", "str("),
        ((1, 2), "tuple", "list"),
        (Decimal("1.5"), "Decimal", ""),
        (Colour.RED, "Colour", ""),
        (Point(1, 2), "Point", ""),
    ],
)
def test_values_json_would_change_are_refused_naming_the_argument(
    value: object, kind: str, hint: str
) -> None:
    with pytest.raises(SerializationError) as info:
        encode_call("t", ("ok", value), {}, LIMIT, ["a", "when"])
    message = str(info.value)
    assert f"argument 'when' of task 't' is a {kind}" in message
    assert hint in message


def test_a_changed_value_deep_inside_is_named_with_its_path() -> None:
    stamp = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(
        SerializationError,
        match=r"argument 'order' of task 't' at \['items'\]\[1\]\['at'\] is a datetime",
    ):
        encode_call("t", (), {"order": {"items": [{}, {"at": stamp}]}}, LIMIT)


def test_json_values_pass_unchanged() -> None:
    args = ("a", 1, 1.5, True, None, [1, [2]], {"k": {"n": [None]}}, 2**63, -0.0)
    assert decode(encode_call("t", args, {"x": "y"}, LIMIT)) == (list(args), {"x": "y"})


def test_str_and_int_enums_pass_as_their_equal_plain_value() -> None:
    assert decode(encode_call("t", (Size.BIG, Level.HIGH), {}, LIMIT)) == (["big", 2], {})


def test_encode_result_refuses_changed_values_and_oversize_results() -> None:
    assert encode_result({"n": [1]}, "t", 100) == b'{"n":[1]}'
    with pytest.raises(SerializationError, match="the result of task 't' is a tuple"):
        encode_result((1, 2), "t", 100)
    with pytest.raises(SerializationError, match="the result of task 't' at \\[0\\] is a UUID"):
        encode_result([UUID(int=1)], "t", 100)
    with pytest.raises(PayloadTooLarge) as info:
        encode_result("x" * 200, "reports.build", 100)
    message = str(info.value)
    assert "the result of task 'reports.build' encodes to 202 bytes" in message
    assert "over the limit of 100 bytes" in message
    assert "max_result_bytes" in message


def test_progress_that_json_would_change_is_refused() -> None:
    with pytest.raises(SerializationError, match="progress is a tuple"):
        dumps((1, 2), what="progress")
