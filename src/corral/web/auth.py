"""API keys with names and scopes: read < write < admin. Bearer tokens, compared in
constant time. A key's name says who did what in the audit log."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from corral.errors import ConfigurationError

__all__ = ["ApiKey", "KeyRing", "Scope", "default_name", "parse_api_keys", "parse_keys"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TOO_SHORT_HINT = (
    "keys must be at least 16 characters (make one with python3 -c "
    "'import secrets; print(secrets.token_urlsafe(24))')"
)


class Scope(IntEnum):
    """What a key may do; each scope includes the ones below it."""

    READ = 1
    WRITE = 2
    ADMIN = 3


def default_name(token: str) -> str:
    """The name of a key configured without one: ``key-`` and the start of its SHA-256
    (stable, and it reveals nothing of the key)."""
    return "key-" + hashlib.sha256(token.encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured key: its ``name`` (in the audit log), bearer ``token`` and scope."""

    name: str
    token: str
    scope: Scope


def _entry(number: int, item: str) -> ApiKey:
    """One ``NAME=TOKEN:SCOPE`` or ``TOKEN:SCOPE`` entry; errors name the entry by its
    position and name, never by its token."""
    name, eq, rest = item.partition("=")
    if eq and _NAME.fullmatch(name):
        where = f"API key {number} ({name!r})"
    else:
        name, rest = "", item
        where = f"API key {number} ({item[:2]!r}…)"
    token, sep, scope = rest.rpartition(":")
    if not sep or not token:
        raise ConfigurationError(
            f"{where} must look like NAME=TOKEN:SCOPE or TOKEN:SCOPE (scope read, write or "
            "admin; a name is letters, digits and . _ -, at most 64)"
        )
    try:
        level = Scope[scope.strip().upper()]
    except KeyError:
        raise ConfigurationError(
            f"{where}: scope {scope!r} is not one of read, write, admin"
        ) from None
    if len(token) < 16:
        if not name:
            where = f"API key {number} ({token[:2]!r}…, {len(token)} characters)"
        raise ConfigurationError(f"{where} is too short: {_TOO_SHORT_HINT}")
    return ApiKey(name or default_name(token), token, level)


def parse_api_keys(spec: str) -> list[ApiKey]:
    """``"ops=tokenA:admin,dash=tokenB:read"`` (as in ``CORRAL_API_KEYS``; the names may
    be left out: ``tokenA:admin``) -> the keys. A token holding ``=`` needs a name (the
    first ``=`` ends it). Two entries with one name or one token are refused."""
    keys: list[ApiKey] = []
    names: set[str] = set()
    tokens: set[str] = set()
    for number, item in enumerate(filter(None, (part.strip() for part in spec.split(","))), 1):
        key = _entry(number, item)
        if key.token in tokens:
            raise ConfigurationError(f"API key {number} ({key.name!r}) repeats an earlier key")
        if key.name in names:
            raise ConfigurationError(f"API key {number}: the name {key.name!r} is taken twice")
        names.add(key.name)
        tokens.add(key.token)
        keys.append(key)
    return keys


def parse_keys(spec: str) -> dict[str, Scope]:
    """:func:`parse_api_keys` as {token: scope}, without the names."""
    return {key.token: key.scope for key in parse_api_keys(spec)}


class KeyRing:
    """The configured keys; an empty ring means authentication is off. ``keys`` is a
    list of :class:`ApiKey`, or {token: scope} (each named by :func:`default_name`)."""

    def __init__(self, keys: Mapping[str, Scope | str] | Iterable[ApiKey] | None = None) -> None:
        self._keys: list[tuple[bytes, str, Scope]] = []
        if isinstance(keys, Mapping):
            given = [
                ApiKey(default_name(token), token, scope)
                if isinstance(scope, Scope)
                else parse_api_keys(f"{token}:{scope}")[0]
                for token, scope in keys.items()
            ]
        else:
            given = list(keys or ())
        for key in given:
            self._keys.append((key.token.encode(), key.name, key.scope))

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def lookup(self, token: str) -> tuple[str, Scope] | None:
        """The name and scope of a presented token, or None. Every key is compared (in
        constant time) so the answer's timing does not reveal which key was close."""
        presented = token.encode()
        found: tuple[str, Scope] | None = None
        for key, name, scope in self._keys:
            if hmac.compare_digest(key, presented):
                found = (name, scope)
        return found

    def scope_of(self, token: str) -> Scope | None:
        """The scope of a presented token, or None (see :meth:`lookup`)."""
        found = self.lookup(token)
        return None if found is None else found[1]

    def by_fingerprint(self, fingerprint: str) -> tuple[str, Scope] | None:
        """The name and scope of the key whose fingerprint (see the dashboard's
        sessions) this is, or None: how a session finds its key without holding it."""
        found: tuple[str, Scope] | None = None
        for key, name, scope in self._keys:
            digest = hashlib.sha256(key).hexdigest()
            if hmac.compare_digest(digest[:24], fingerprint):
                found = (name, scope)
        return found

    def tokens(self) -> list[str]:
        """The configured keys (to derive the dashboard's session secret)."""
        return [key.decode() for key, _, _ in self._keys]
