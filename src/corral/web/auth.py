"""API keys with scopes: read < write < admin. Bearer tokens, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from enum import IntEnum

from corral.errors import ConfigurationError

__all__ = ["KeyRing", "Scope", "parse_keys"]


class Scope(IntEnum):
    """What a key may do; each scope includes the ones below it."""

    READ = 1
    WRITE = 2
    ADMIN = 3


def parse_keys(spec: str) -> dict[str, Scope]:
    """``"tokenA:admin,tokenB:read"`` (as in ``CORRAL_API_KEYS``) -> {token: scope}."""
    keys: dict[str, Scope] = {}
    for number, item in enumerate(filter(None, (part.strip() for part in spec.split(","))), 1):
        token, sep, scope = item.rpartition(":")
        if not sep or not token:
            raise ConfigurationError(
                f"API key entry {item[:4]}… must look like TOKEN:SCOPE (read, write or admin)"
            )
        try:
            keys[token] = Scope[scope.strip().upper()]
        except KeyError:
            raise ConfigurationError(
                f"API key scope {scope!r} is not one of read, write, admin"
            ) from None
        if len(token) < 16:
            raise ConfigurationError(
                f"API key {number} ({token[:2]!r}…, {len(token)} characters) is too short: "
                "keys must be at least 16 characters (make one with python3 -c "
                "'import secrets; print(secrets.token_urlsafe(24))')"
            )
    return keys


class KeyRing:
    """The configured keys; an empty ring means authentication is off."""

    def __init__(self, keys: Mapping[str, Scope | str] | None = None) -> None:
        self._keys: list[tuple[bytes, Scope]] = []
        for token, scope in (keys or {}).items():
            level = scope if isinstance(scope, Scope) else parse_keys(f"{token}:{scope}")[token]
            self._keys.append((token.encode(), level))

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def scope_of(self, token: str) -> Scope | None:
        """The scope of a presented token, or None. Every key is compared (in constant
        time) so the answer's timing does not reveal which key was close."""
        presented = token.encode()
        found: Scope | None = None
        for key, scope in self._keys:
            if hmac.compare_digest(key, presented):
                found = scope
        return found

    def by_fingerprint(self, fingerprint: str) -> tuple[str, Scope] | None:
        """The name and scope of the key whose fingerprint (see the dashboard's
        sessions) this is, or None: how a session finds its key without holding it."""
        found: tuple[str, Scope] | None = None
        for key, scope in self._keys:
            digest = hashlib.sha256(key).hexdigest()
            if hmac.compare_digest(digest[:24], fingerprint):
                found = (f"key-{digest[:4]}", scope)
        return found

    def tokens(self) -> list[str]:
        """The configured keys (to derive the dashboard's session secret)."""
        return [key.decode() for key, _ in self._keys]
