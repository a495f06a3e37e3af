"""Configuration from the environment: the one module that reads ``os.environ``.

The backend is picked by one URL: ``CORRAL_URL``, else ``REDIS_URL``, else the
embedded default ``sqlite:///corral.db``. Deploy-time worker knobs have environment
overrides (``CORRAL_QUEUES``, ``CORRAL_CONCURRENCY``), as has how long a call rides out
a lost connection (``CORRAL_RECONNECT_TIMEOUT``), as has how long a notification
relay holds the outbox entries it took (``CORRAL_OUTBOX_HOLD_MS``); everything else is
code.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from corral.errors import ConfigurationError

__all__ = [
    "DEFAULT_OUTBOX_HOLD_MS",
    "DEFAULT_RECONNECT_TIMEOUT",
    "DEFAULT_URL",
    "REDIS_SCHEMES",
    "SQLITE_SCHEMES",
    "describe_backend",
    "env_int",
    "env_list",
    "fault_rates",
    "mask_url",
    "outbox_hold_ms",
    "reconnect_timeout",
    "resolve_url",
]

DEFAULT_URL = "sqlite:///corral.db"
REDIS_SCHEMES = frozenset(
    {
        "redis",
        "rediss",
        "unix",
        "redis+cluster",
        "rediss+cluster",
        "redis+sentinel",
        "rediss+sentinel",
    }
)
SQLITE_SCHEMES = frozenset({"sqlite"})


def resolve_url(url: str | None = None) -> str:
    """The backend URL: the argument, else ``CORRAL_URL``, else ``REDIS_URL``, else
    the embedded default. Raises ConfigurationError for an unknown scheme."""
    chosen = url or os.environ.get("CORRAL_URL") or os.environ.get("REDIS_URL") or DEFAULT_URL
    scheme = urlsplit(chosen).scheme
    if scheme not in REDIS_SCHEMES | SQLITE_SCHEMES:
        known = ", ".join(sorted(f"{s}://" for s in REDIS_SCHEMES | SQLITE_SCHEMES))
        raise ConfigurationError(
            f"unsupported backend URL {mask_url(chosen)!r}: the scheme must be one of {known}"
        )
    return chosen


def mask_url(url: str) -> str:
    """The URL with any password (in its user info, or a query option whose name ends
    in ``password``) replaced by ``***`` (safe to print)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    masked = False
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        masked = True
        # Work on the netloc text as written (parsing the port could fail or drop
        # IPv6 brackets, and a Sentinel URL lists several hosts).
        user = userinfo.split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}:***@{hostport}")
    if "password" in parts.query.lower():
        masked = True
        options = [
            f"{name}=***" if name.lower().endswith("password") else f"{name}{eq}{value}"
            for name, eq, value in (o.partition("=") for o in parts.query.split("&"))
        ]
        parts = parts._replace(query="&".join(options))
    # Rebuilt only when needed: urlunsplit rewrites some URLs (sqlite:/// → sqlite:/).
    return urlunsplit(parts) if masked else url


def describe_backend(url: str) -> str:
    """The URL as safe to print, and for SQLite the absolute file it opens (a relative
    path is relative to the working directory, so two shells can use two files)."""
    shown = mask_url(url)
    if urlsplit(url).scheme not in SQLITE_SCHEMES:
        return shown
    from corral.backends.sqlite.store import path_from_url

    try:
        path = path_from_url(url)
    except ConfigurationError:
        return shown
    if path == ":memory:":
        return f"{shown} (in memory)"
    return f"{shown} (file {os.path.abspath(path)})"


DEFAULT_RECONNECT_TIMEOUT = 5.0


def reconnect_timeout(value: float | None = None) -> float:
    """Seconds a backend call keeps trying to reach Redis before it raises
    ConnectionFailed: ``value``, else ``CORRAL_RECONNECT_TIMEOUT``, else 5."""
    name = "reconnect_timeout"
    if value is None:
        raw = os.environ.get("CORRAL_RECONNECT_TIMEOUT", "").strip()
        if not raw:
            return DEFAULT_RECONNECT_TIMEOUT
        name = "CORRAL_RECONNECT_TIMEOUT"
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number of seconds, got {raw!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigurationError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return float(value)


DEFAULT_OUTBOX_HOLD_MS = 30_000


def outbox_hold_ms() -> int:
    """How long (ms) a relay holds the outbox entries it took before another may take
    them again: ``CORRAL_OUTBOX_HOLD_MS``, else 30 000. The time a notification waits
    after a worker died while relaying it; a shorter hold only risks a second relay of
    a slow batch, which enqueues nothing new (delivery ids are stable)."""
    name = "CORRAL_OUTBOX_HOLD_MS"
    value = env_int(name)
    if value is None:
        return DEFAULT_OUTBOX_HOLD_MS
    if value < 100:
        raise ConfigurationError(f"{name} must be at least 100 (ms), got {value}")
    return value


def env_int(name: str) -> int | None:
    """An integer environment variable, or None when unset; a bad value is an error."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None


def env_list(name: str) -> list[str] | None:
    """A comma-separated environment variable as a list, or None when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


def fault_rates(points: tuple[str, ...]) -> dict[str, float]:
    """``CORRAL_FAULTS`` (chaos testing only) as {point: probability}."""
    raw = os.environ.get("CORRAL_FAULTS", "").strip()
    rates: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, value = item.partition("=")
        if name not in points:
            raise ConfigurationError(
                f"CORRAL_FAULTS names unknown point {name!r}; use one of {', '.join(points)}"
            )
        try:
            rate = float(value)
        except ValueError:
            raise ConfigurationError(
                f"CORRAL_FAULTS: {name} needs a probability, got {value!r}"
            ) from None
        if not 0 <= rate <= 1:
            raise ConfigurationError(f"CORRAL_FAULTS: {name}={rate} is not in [0, 1]")
        rates[name] = rate
    return rates
