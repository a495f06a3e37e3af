"""Backend URL resolution from the environment, and password masking."""

from __future__ import annotations

import pytest

from corral.errors import ConfigurationError
from corral.settings import (
    DEFAULT_OUTBOX_HOLD_MS,
    DEFAULT_RECONNECT_TIMEOUT,
    DEFAULT_URL,
    env_int,
    env_list,
    mask_url,
    outbox_hold_ms,
    reconnect_timeout,
    resolve_url,
)


def test_default_is_embedded_sqlite() -> None:
    assert resolve_url() == DEFAULT_URL == "sqlite:///corral.db"


def test_redis_url_is_used_when_corral_url_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://from-redis-url:6379/1")
    assert resolve_url() == "redis://from-redis-url:6379/1"


def test_corral_url_wins_over_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://from-redis-url:6379/1")
    monkeypatch.setenv("CORRAL_URL", "redis://from-corral-url:6379/2")
    assert resolve_url() == "redis://from-corral-url:6379/2"


def test_explicit_url_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://a:6379/0")
    monkeypatch.setenv("CORRAL_URL", "redis://b:6379/0")
    assert resolve_url("sqlite:///other.db") == "sqlite:///other.db"


def test_empty_env_values_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_URL", "")
    monkeypatch.setenv("REDIS_URL", "redis://r:6379/0")
    assert resolve_url() == "redis://r:6379/0"


@pytest.mark.parametrize(
    "url",
    [
        "redis://h:6379/0",
        "rediss://h:6380/0",
        "unix:///tmp/redis.sock",
        "sqlite:///x.db",
        "redis+sentinel://s1:26379,s2:26379/corral/0",
        "rediss+sentinel://s1:26379/corral",
    ],
)
def test_known_schemes(url: str) -> None:
    assert resolve_url(url) == url


def test_unknown_scheme_names_the_masked_url() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_url("mysql://admin:hunter2@db.internal:3306/jobs")
    message = str(info.value)
    assert "hunter2" not in message
    assert "mysql://admin:***@db.internal:3306/jobs" in message
    assert "redis://" in message and "sqlite://" in message


def test_unknown_scheme_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_URL", "postgres://u:s3cret@pg/db")
    with pytest.raises(ConfigurationError) as info:
        resolve_url()
    assert "s3cret" not in str(info.value)
    assert "postgres://u:***@pg/db" in str(info.value)


def test_a_bare_host_without_scheme_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="unsupported backend URL 'localhost:6379'"):
        resolve_url("localhost:6379")


def test_unknown_scheme_with_a_bad_port_is_still_a_configuration_error() -> None:
    # resolve_url promises ConfigurationError for an unknown scheme, and must not leak
    # the password on the way.
    with pytest.raises(ConfigurationError) as info:
        resolve_url("mysql://admin:hunter2@db:notaport/jobs")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:secret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:secret@host:6379/0", "redis://user:***@host:6379/0"),
        ("rediss://user:secret@host/0", "rediss://user:***@host/0"),
        (
            "redis://user:secret@host:6379/0?ssl_cert_reqs=none",
            "redis://user:***@host:6379/0?ssl_cert_reqs=none",
        ),
        (
            "redis+sentinel://u:secret@s1:26379,s2:26379/corral/0?sentinel_password=secret",
            "redis+sentinel://u:***@s1:26379,s2:26379/corral/0?sentinel_password=***",
        ),
        (
            "rediss+sentinel://s1/corral?ssl_cert_reqs=none&sentinel_password=secret",
            "rediss+sentinel://s1/corral?ssl_cert_reqs=none&sentinel_password=***",
        ),
        ("redis://host/0?password=secret", "redis://host/0?password=***"),
    ],
)
def test_mask_url_hides_passwords(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert "secret" not in mask_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "redis://host:6379/0",
        "redis://user@host:6379/0",
        "sqlite:///corral.db",
        "unix:///s",
        "redis+sentinel://s1,s2:26380/corral/1?sentinel_timeout=2",
    ],
)
def test_mask_url_leaves_urls_without_password_alone(url: str) -> None:
    assert mask_url(url) == url


def test_mask_url_never_raises_and_never_leaks() -> None:
    # "safe to print": a URL with a malformed port must not blow up the caller
    # (it is used in repr(app), error messages and the backend constructor).
    for url in ("redis://u:secret@host:abc/0", "redis://[::1"):
        masked = mask_url(url)
        assert "secret" not in masked


def test_env_int(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_int("CORRAL_TEST_INT") is None
    monkeypatch.setenv("CORRAL_TEST_INT", " 12 ")
    assert env_int("CORRAL_TEST_INT") == 12
    monkeypatch.setenv("CORRAL_TEST_INT", "twelve")
    with pytest.raises(ConfigurationError, match=r"CORRAL_TEST_INT.*'twelve'"):
        env_int("CORRAL_TEST_INT")


def test_env_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_list("CORRAL_TEST_LIST") is None
    monkeypatch.setenv("CORRAL_TEST_LIST", " high, low ,,default ")
    assert env_list("CORRAL_TEST_LIST") == ["high", "low", "default"]


def test_reconnect_timeout_argument_then_environment_then_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert reconnect_timeout() == DEFAULT_RECONNECT_TIMEOUT == 5.0
    monkeypatch.setenv("CORRAL_RECONNECT_TIMEOUT", "12.5")
    assert reconnect_timeout() == 12.5
    assert reconnect_timeout(0) == 0.0  # the argument wins; 0 = fail at once


@pytest.mark.parametrize("value", [-1, float("nan"), "5", True])
def test_reconnect_timeout_rejects_what_is_not_seconds(value: object) -> None:
    with pytest.raises(ConfigurationError, match="reconnect_timeout must be a number"):
        reconnect_timeout(value)  # type: ignore[arg-type]


def test_reconnect_timeout_names_a_bad_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_RECONNECT_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="CORRAL_RECONNECT_TIMEOUT must be a number"):
        reconnect_timeout()


def test_outbox_hold_from_the_environment_else_30_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORRAL_OUTBOX_HOLD_MS", raising=False)
    assert outbox_hold_ms() == DEFAULT_OUTBOX_HOLD_MS == 30_000
    monkeypatch.setenv("CORRAL_OUTBOX_HOLD_MS", " 2000 ")
    assert outbox_hold_ms() == 2000


@pytest.mark.parametrize("value", ["soon", "2.5", "99", "-1"])
def test_outbox_hold_names_a_bad_environment_value(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CORRAL_OUTBOX_HOLD_MS", value)
    with pytest.raises(ConfigurationError, match="CORRAL_OUTBOX_HOLD_MS must be"):
        outbox_hold_ms()
