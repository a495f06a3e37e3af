"""SmartKosh's settings from the environment, checked in one place: the launcher
reports a bad one in one line before starting anything, and Django's settings read
the same values.

- ``DATABASE_URL``: ``postgres://user:password@host:5432/name`` or
  ``sqlite:///path``; default: ``db.sqlite3`` in the data directory.
- ``CORRAL_URL`` / ``REDIS_URL``: the Corral store; default ``corral.db`` in the data
  directory (embedded SQLite).
- ``SMARTKOSH_DATA``: the data directory (default ``.smartkosh``): databases and uploads.
- ``PORT``: the web server's port (default 8000).
- ``IMPORT_CHUNK_ROWS``: rows written per transaction (default 500);
  ``IMPORT_CHUNK_PAUSE``: seconds to wait between chunks (default 0; set 0.2 to watch
  the progress bar move on a small file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


class SettingError(ValueError):
    """A setting from the environment is wrong; the message names it."""


@dataclass(frozen=True)
class Config:
    data: Path
    database: dict[str, Any]
    corral_url: str
    port: int
    chunk_rows: int
    chunk_pause: float


def database(url: str | None, data: Path) -> dict[str, Any]:
    """Django's DATABASES["default"] for ``DATABASE_URL``."""
    if not url:
        return _sqlite(data / "db.sqlite3")
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = url.removeprefix("sqlite://").removeprefix("/")
        if not path:
            raise SettingError(f"DATABASE_URL={url!r}: no file; use sqlite:///path/to/db.sqlite3")
        return _sqlite(Path(path))  # sqlite:////abs/path is absolute
    if parts.scheme in ("postgres", "postgresql"):
        name = parts.path.lstrip("/")
        if not name:
            raise SettingError(f"DATABASE_URL={url!r}: no database name after the host")
        try:
            port = parts.port
        except ValueError:
            raise SettingError(f"DATABASE_URL={url!r}: the port is not a number") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(name),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
        }
    raise SettingError(
        f"DATABASE_URL={url!r}: unsupported scheme {parts.scheme!r}; use "
        "postgres://user:password@host:5432/name or sqlite:///path"
    )


def _sqlite(path: Path) -> dict[str, Any]:
    # The web server and the worker write at once: WAL lets readers through, and
    # IMMEDIATE transactions wait for the lock up front instead of failing mid-way.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def _number(name: str, default: str, kind: type, low: float) -> Any:
    raw = os.environ.get(name, default)
    try:
        value = kind(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value < low:
        raise SettingError(f"{name}={raw!r} must be at least {low}")
    return value


def load() -> Config:
    """The settings of this process's environment; raises SettingError naming the
    first wrong one."""
    data = Path(os.environ.get("SMARTKOSH_DATA") or ".smartkosh").resolve()
    db = database(os.environ.get("DATABASE_URL"), data)
    if db["ENGINE"].endswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise SettingError(
                "DATABASE_URL is PostgreSQL but psycopg is not installed: "
                "pip install 'psycopg[binary]'"
            ) from None
    corral_url = (
        os.environ.get("CORRAL_URL")
        or os.environ.get("REDIS_URL")
        or f"sqlite:///{data / 'corral.db'}"
    )
    if not corral_url.startswith(("redis://", "rediss://", "unix://", "sqlite://")):
        raise SettingError(f"CORRAL_URL={corral_url!r}: use redis://host:6379/0 or sqlite:///path")
    return Config(
        data=data,
        database=db,
        corral_url=corral_url,
        port=_number("PORT", "8000", int, 1),
        chunk_rows=_number("IMPORT_CHUNK_ROWS", "500", int, 1),
        chunk_pause=_number("IMPORT_CHUNK_PAUSE", "0", float, 0),
    )
