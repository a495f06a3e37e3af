"""API keys with names: NAME=TOKEN:SCOPE, the old TOKEN:SCOPE, and bad entries named
without showing their tokens."""

from __future__ import annotations

import pytest

from corral.errors import ConfigurationError
from corral.web.auth import ApiKey, KeyRing, Scope, default_name, parse_api_keys, parse_keys

A = "Qm7vT2xKp9LwZr4N-admin"
B = "Hc8RyJ3nW6tBf5Ds-read"


def test_named_and_unnamed_entries() -> None:
    keys = parse_api_keys(f" ops={A}:admin , {B}:read ")
    assert keys == [ApiKey("ops", A, Scope.ADMIN), ApiKey(default_name(B), B, Scope.READ)]
    assert default_name(B).startswith("key-") and B not in default_name(B)
    assert parse_keys(f"ops={A}:admin") == {A: Scope.ADMIN}


def test_a_token_with_equals_signs_is_given_with_a_name() -> None:
    token = "abc=def/ghi+jkl0123=="
    assert parse_api_keys(f"svc={token}:write") == [ApiKey("svc", token, Scope.WRITE)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (f"ops={A}", "API key 1 ('ops') must look like NAME=TOKEN:SCOPE or TOKEN:SCOPE"),
        (f"ops={A}:root", "API key 1 ('ops'): scope 'root' is not one of read, write, admin"),
        (f"{A}:admin,ops=short:read", "API key 2 ('ops') is too short"),
        (f"ops={A}:admin,ops={B}:read", "API key 2: the name 'ops' is taken twice"),
        (f"ops={A}:admin,dash={A}:read", "API key 2 ('dash') repeats an earlier key"),
        (f"{A}:admin,{A}:read", "API key 2 ('key-"),
    ],
)
def test_a_bad_entry_is_named_never_its_token(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_api_keys(spec)
    assert message in str(info.value)
    assert A not in str(info.value) and B not in str(info.value)


def test_the_ring_tells_a_tokens_name_and_scope() -> None:
    ring = KeyRing(parse_api_keys(f"ops={A}:admin,{B}:read"))
    assert ring.lookup(A) == ("ops", Scope.ADMIN)
    assert ring.lookup(B) == (default_name(B), Scope.READ)
    assert ring.lookup("nope") is None and ring.scope_of(A) is Scope.ADMIN
    # The {token: scope} form still works, named from the token.
    assert KeyRing({A: "write"}).lookup(A) == (default_name(A), Scope.WRITE)
