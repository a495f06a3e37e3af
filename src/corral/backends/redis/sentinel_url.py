"""Sentinel URLs: ``redis+sentinel://`` and ``rediss+sentinel://`` (TLS).

``redis+sentinel://[user:password@]host1[:port1],host2[:port2]/<service>[/<db>]``.
The user and password authenticate to the data nodes (the primary and replicas);
the sentinels take their own as query options:

- ``sentinel_username``, ``sentinel_password``: AUTH to the sentinels (default none);
- ``sentinel_timeout``: seconds to connect to, and wait for, one sentinel (default 1);
- ``ssl_cert_reqs`` (``none``/``optional``/``required``), ``ssl_ca_certs``,
  ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname``: TLS, to the sentinels and
  the data nodes alike; ``rediss+sentinel`` only.

The port defaults to 26379, the database to 0. Anything else is a ValueError naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["SENTINEL_SCHEMES", "SentinelURL", "address", "is_sentinel_url", "parse_sentinel_url"]

SENTINEL_SCHEMES = frozenset({"redis+sentinel", "rediss+sentinel"})
DEFAULT_PORT = 26379
DEFAULT_SENTINEL_TIMEOUT = 1.0

_CERT_REQS = ("none", "optional", "required")
_TLS_OPTIONS = (
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_check_hostname",
)
_OPTIONS = ("sentinel_username", "sentinel_password", "sentinel_timeout", *_TLS_OPTIONS)
_FORM = "redis+sentinel://[user:password@]host:port[,host:port...]/<service>[/<db>]"


@dataclass(frozen=True)
class SentinelURL:
    """A parsed Sentinel URL (see the module doc)."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    sentinel_timeout: float = DEFAULT_SENTINEL_TIMEOUT
    #: redis-py ``ssl_*`` keyword arguments, for the data nodes and the sentinels.
    tls_options: dict[str, Any] = field(default_factory=dict)

    @property
    def addresses(self) -> str:
        """The sentinels as ``host:port, ...`` (for messages)."""
        return ", ".join(address(host, port) for host, port in self.sentinels)


def is_sentinel_url(url: str) -> bool:
    """Whether ``url`` names Redis through Sentinel."""
    try:
        return urlsplit(url).scheme in SENTINEL_SCHEMES
    except ValueError:
        return False


def address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _host_port(item: str) -> tuple[str, int]:
    if not item:
        raise ValueError(f"an empty sentinel address (write {_FORM})")
    if item.startswith("["):  # [IPv6]:port
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"sentinel address {item!r}: write [IPv6 address]:port")
        port_text = rest[1:]
    else:
        host, _, port_text = item.partition(":")
        if ":" in port_text:
            raise ValueError(f"sentinel address {item!r}: put an IPv6 address in brackets")
    if not host:
        raise ValueError(f"sentinel address {item!r} has no host")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"sentinel address {item!r}: the port must be a number 1-65535")
    return host, int(port_text)


def _options(query: str, tls: bool) -> dict[str, str]:
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(f"unreadable query string {query!r}") from None
    options: dict[str, str] = {}
    for name, values in parsed.items():
        if name not in _OPTIONS:
            raise ValueError(f"unknown option {name!r} (known: {', '.join(_OPTIONS)})")
        if len(values) > 1:
            raise ValueError(f"option {name!r} is given {len(values)} times")
        if name in _TLS_OPTIONS and not tls:
            raise ValueError(f"option {name!r} needs TLS: use rediss+sentinel://")
        options[name] = values[0]
    return options


def _tls_options(options: dict[str, str]) -> dict[str, Any]:
    tls: dict[str, Any] = {}
    for name in _TLS_OPTIONS:
        if name not in options:
            continue
        value = options[name]
        if name == "ssl_cert_reqs" and value not in _CERT_REQS:
            raise ValueError(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}, got {value!r}")
        if name == "ssl_check_hostname":
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"ssl_check_hostname must be true or false, got {value!r}")
            tls[name] = value.lower() in ("true", "1", "yes")
        else:
            tls[name] = value
    return tls


def parse_sentinel_url(url: str) -> SentinelURL:
    """Parse a ``redis+sentinel://`` or ``rediss+sentinel://`` URL (see the module
    doc). Raises ValueError naming what is wrong."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"unreadable URL ({exc})") from None
    if parts.scheme not in SENTINEL_SCHEMES:
        raise ValueError(
            f"the scheme must be redis+sentinel or rediss+sentinel, not {parts.scheme!r}"
        )
    tls = parts.scheme == "rediss+sentinel"
    userinfo, at, hosts = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    if not hosts:
        raise ValueError(f"no sentinel addresses (write {_FORM})")
    sentinels = tuple(_host_port(item.strip()) for item in hosts.split(","))
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if not segments:
        raise ValueError(f"no service name (write {_FORM})")
    if len(segments) > 2:
        raise ValueError(f"the path {parts.path!r} has more than /<service>/<db>")
    service = unquote(segments[0])
    db = 0
    if len(segments) == 2:
        if not segments[1].isdigit():
            raise ValueError(f"the database must be a number, got {segments[1]!r}")
        db = int(segments[1])
    options = _options(parts.query, tls)
    timeout = DEFAULT_SENTINEL_TIMEOUT
    if "sentinel_timeout" in options:
        try:
            timeout = float(options["sentinel_timeout"])
        except ValueError:
            timeout = math.nan
        if not 0 < timeout < math.inf:
            raise ValueError(
                f"sentinel_timeout must be a number of seconds > 0, got {options['sentinel_timeout']!r}"
            )
    return SentinelURL(
        sentinels=sentinels,
        service=service,
        db=db,
        tls=tls,
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
        sentinel_timeout=timeout,
        tls_options=_tls_options(options),
    )
