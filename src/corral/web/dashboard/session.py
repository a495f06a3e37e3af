"""Who is looking at the dashboard: a signed session cookie and its CSRF token.

With API keys configured, a visitor pastes a key on the login page; the session cookie
then names that key (by a fingerprint, never the key itself) and is checked against the
key ring on every request, so removing a key from the server ends its sessions.
Without keys (loopback only) every visitor is an anonymous admin, but still gets a
session: its CSRF token is what stops another site from posting to 127.0.0.1.

The cookie is HttpOnly, SameSite=Strict, scoped to the dashboard's path, and signed
with ``itsdangerous`` (timestamped: it expires after :data:`SESSION_MAX_AGE`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from corral.web.auth import Scope
from corral.web.deps import settings_of

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_MAX_AGE",
    "LoginRequired",
    "Refused",
    "Sessions",
    "Viewer",
    "action",
    "check_csrf",
    "default_secret",
    "fingerprint",
    "viewer_of",
]

COOKIE = "corral_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
#: Seconds a login lasts.
SESSION_MAX_AGE = 12 * 3600


class LoginRequired(Exception):
    """No valid session where keys are configured: the page answers with the login form."""


class Refused(Exception):
    """A request the viewer may not make (scope too low, missing or wrong CSRF token)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person behind a request: key name, scope and the session's CSRF token.

    ``fresh`` marks a session made for this request (its cookie must be set on the answer).
    """

    name: str
    scope: Scope
    csrf: str
    key: str = ""
    fresh: bool = False

    @property
    def can_write(self) -> bool:
        return self.scope >= Scope.WRITE

    @property
    def is_admin(self) -> bool:
        return self.scope >= Scope.ADMIN


def fingerprint(token: str) -> str:
    """What a session stores to name a key: a hash, so a stolen cookie never holds it."""
    return hashlib.sha256(token.encode()).hexdigest()[:24]


class Sessions:
    """Signs and reads session cookies for one dashboard."""

    def __init__(self, secret: str) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="corral-dashboard-session")

    def dump(self, viewer: Viewer) -> str:
        return self._signer.dumps({"k": viewer.key, "c": viewer.csrf})

    def load(self, cookie: str) -> dict[str, Any] | None:
        try:
            data = self._signer.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        return data


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def viewer_of(request: Request) -> Viewer:
    """The request's viewer (cached on the request), or LoginRequired."""
    cached: Viewer | None = getattr(request.state, "corral_viewer", None)
    if cached is not None:
        return cached
    settings = settings_of(request)
    sessions: Sessions = request.app.state.corral_sessions
    data = sessions.load(request.cookies.get(COOKIE, ""))
    viewer: Viewer | None = None
    if not settings.keys.enabled:
        csrf = data["c"] if data else new_csrf()
        viewer = Viewer("anonymous", Scope.ADMIN, csrf, fresh=data is None)
    elif data and data.get("k"):
        found = settings.keys.by_fingerprint(str(data["k"]))
        if found is not None:
            name, scope = found
            viewer = Viewer(name, scope, data["c"], key=str(data["k"]))
    if viewer is None:
        raise LoginRequired
    request.state.corral_viewer = viewer
    return viewer


def check_csrf(request: Request, viewer: Viewer, submitted: str | None) -> None:
    """Refuse a state-changing request whose CSRF token (form field or header) is not
    the session's."""
    token = submitted or request.headers.get(CSRF_HEADER, "")
    if not token or not hmac.compare_digest(token.encode(), viewer.csrf.encode()):
        raise Refused("the form's security token is missing or stale: reload the page", 403)


def default_secret(keys: list[str]) -> str:
    """A signing secret when none is given: derived from the keys (so every serve
    process with the same keys accepts the same sessions, and changing the keys ends
    them all), or random per process without keys."""
    if not keys:
        return secrets.token_urlsafe(32)
    digest = hashlib.sha256()
    for key in sorted(keys):
        digest.update(hashlib.sha256(key.encode()).digest())
    return "corral-session:" + digest.hexdigest()


def action(scope: Scope) -> Any:
    """A dependency for state-changing dashboard requests: the viewer, once the CSRF
    token (form field ``csrf`` or header ``X-CSRF-Token``) matches and the scope allows it."""

    async def check(request: Request) -> Viewer:
        viewer = viewer_of(request)
        submitted: str | None = None
        if request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            value = (await request.form()).get(CSRF_FIELD)
            submitted = value if isinstance(value, str) else None
        check_csrf(request, viewer, submitted)
        if viewer.scope < scope:
            raise Refused(
                f"your key has {viewer.scope.name.lower()} scope; "
                f"{scope.name.lower()} is needed for this"
            )
        return viewer

    return check
