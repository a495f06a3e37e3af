"""Sentinel URLs: what each part means, and a malformed one named precisely."""

from __future__ import annotations

import pytest

from corral.backends.redis import RedisBackend
from corral.backends.redis.sentinel_url import SentinelURL, parse_sentinel_url
from corral.errors import ConfigurationError


def test_a_full_url() -> None:
    url = (
        "rediss+sentinel://app:p%40ss@s1:26380,s2,[::1]:26381/orders/3"
        "?sentinel_username=sen&sentinel_password=spw&sentinel_timeout=2.5"
        "&ssl_cert_reqs=none&ssl_ca_certs=/ca.pem&ssl_check_hostname=false"
    )
    assert parse_sentinel_url(url) == SentinelURL(
        sentinels=(("s1", 26380), ("s2", 26379), ("::1", 26381)),
        service="orders",
        db=3,
        tls=True,
        username="app",
        password="p@ss",
        sentinel_username="sen",
        sentinel_password="spw",
        sentinel_timeout=2.5,
        tls_options={
            "ssl_cert_reqs": "none",
            "ssl_ca_certs": "/ca.pem",
            "ssl_check_hostname": False,
        },
    )


def test_defaults() -> None:
    parsed = parse_sentinel_url("redis+sentinel://s1/corral")
    assert (parsed.sentinels, parsed.service, parsed.db, parsed.tls) == (
        (("s1", 26379),),
        "corral",
        0,
        False,
    )
    assert parsed.password is None and parsed.sentinel_password is None
    assert parsed.sentinel_timeout == 1.0
    assert parse_sentinel_url("redis+sentinel://:pw@s1/corral/").password == "pw"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://s1:26379", "no service name"),
        ("redis+sentinel://s1:26379/", "no service name"),
        ("redis+sentinel:///corral", "no sentinel addresses"),
        ("redis+sentinel://s1,,s2/corral", "an empty sentinel address"),
        ("redis+sentinel://s1:0/corral", "sentinel address 's1:0': the port must be"),
        ("redis+sentinel://s1:x/corral", "sentinel address 's1:x': the port must be"),
        ("redis+sentinel://::1:5/corral", "put an IPv6 address in brackets"),
        ("redis+sentinel://[::1/corral", "unreadable URL"),
        ("redis+sentinel://[::1]x/corral", "write \\[IPv6 address\\]:port"),
        ("redis+sentinel://s1/corral/x", "the database must be a number, got 'x'"),
        ("redis+sentinel://s1/corral/0/1", "more than /<service>/<db>"),
        ("redis+sentinel://s1/corral?retries=3", "unknown option 'retries'"),
        ("redis+sentinel://s1/corral?ssl_ca_certs=/ca", "'ssl_ca_certs' needs TLS"),
        ("rediss+sentinel://s1/c?ssl_cert_reqs=maybe", "ssl_cert_reqs must be one of"),
        ("redis+sentinel://s1/c?sentinel_timeout=0", "sentinel_timeout must be"),
        ("redis+sentinel://s1/c?sentinel_timeout=a&sentinel_timeout=1", "given 2 times"),
        ("redis://s1/corral", "the scheme must be redis\\+sentinel"),
    ],
)
def test_a_malformed_url_names_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sentinel_url(url)


async def test_connect_reports_a_malformed_url_as_a_configuration_error() -> None:
    backend = RedisBackend("redis+sentinel://u:secret@s1:26379/corral/x")
    with pytest.raises(ConfigurationError, match="the database must be a number") as info:
        await backend.connect()
    assert "secret" not in str(info.value)
