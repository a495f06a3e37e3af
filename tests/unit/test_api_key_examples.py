"""The README's API-key example is accepted; a bad key is named, masked (issue 15)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corral.errors import ConfigurationError
from corral.web.auth import Scope, parse_keys

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_readme_key_example_is_accepted() -> None:
    examples = re.findall(r'CORRAL_API_KEYS="([^"]+)"', README)
    assert examples, "the README shows no CORRAL_API_KEYS example"
    for example in examples:
        keys = parse_keys(example)
        assert set(keys.values()) >= {Scope.ADMIN, Scope.READ}


def test_a_short_key_is_named_masked_with_its_position() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_keys("a-long-enough-admin-key:admin,tokB:read")
    message = str(info.value)
    assert "API key 2 ('to'…, 4 characters)" in message
    assert "at least 16 characters" in message
    assert "tokB" not in message
    assert "secrets.token_urlsafe" in message
