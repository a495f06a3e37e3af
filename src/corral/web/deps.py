"""Per-request plumbing: the Corral app, the caller's scope, masking of secrets."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from corral.app import Corral
from corral.job import Job
from corral.web.auth import KeyRing, Scope
from corral.web.fanout import QueueFeeds
from corral.web.masking import mask, mask_job

__all__ = [
    "ANONYMOUS",
    "DEFAULT_SECRET_FIELDS",
    "Settings",
    "caller",
    "job_out",
    "progress_out",
    "require",
    "settings_of",
]

#: Who a request is when the server has no keys (the dashboard's viewer too).
ANONYMOUS = "anonymous"

#: Payload field names masked for callers without write scope (matched case-insensitively
#: as substrings, so "db_password" and "X-Api-Key" are caught too).
DEFAULT_SECRET_FIELDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "credential",
    "private_key",
)


@dataclass(frozen=True)
class Settings:
    corral: Corral
    keys: KeyRing
    allow_unregistered: bool = False
    secret_fields: tuple[str, ...] = DEFAULT_SECRET_FIELDS
    max_body_bytes: int = 1024 * 1024
    #: The SSE queue streams' shared subscriptions (see fanout).
    feeds: QueueFeeds = field(default_factory=QueueFeeds, repr=False, compare=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        words = "|".join(re.escape(w.replace("-", "_")) for w in self.secret_fields)
        object.__setattr__(self, "_pattern", re.compile(words, re.IGNORECASE))

    def is_secret(self, name: str) -> bool:
        return bool(self._pattern.search(name.replace("-", "_")))


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.corral_settings
    return settings


#: Declares the bearer scheme in the OpenAPI document; the check itself is below, so
#: every failure answers with the API's own error body.
_BEARER = HTTPBearer(auto_error=False, description="an API key: read, write or admin scope")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]


def require(scope: Scope) -> Callable[[Request, Credentials], Awaitable[Scope]]:
    """A dependency: the caller's scope, or 401/403 when it is missing or too low. The
    key's name is left in ``request.state.corral_key`` (see :func:`caller`)."""

    # async although it never awaits: FastAPI runs a plain def dependency in a thread
    # pool, a hop that cost more than the check itself on every request.
    async def check(request: Request, credentials: Credentials) -> Scope:
        settings = settings_of(request)
        if not settings.keys.enabled:
            request.state.corral_key = ANONYMOUS
            return Scope.ADMIN
        if credentials is None or not credentials.credentials:
            raise HTTPException(
                401,
                "missing API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        found = settings.keys.lookup(credentials.credentials.strip())
        if found is None:
            raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        request.state.corral_key, granted = found
        if granted < scope:
            raise HTTPException(
                403, f"this key has {granted.name.lower()} scope; {scope.name.lower()} needed"
            )
        return granted

    return check


def caller(request: Request) -> str:
    """The name of the key that made this request (``anonymous`` without keys)."""
    name: str = getattr(request.state, "corral_key", ANONYMOUS)
    return name


def job_out(
    job: Job, scope: Scope, settings: Settings, *, created: bool | None = None
) -> dict[str, Any]:
    """A job as the API shows it; secrets masked for read-only callers (see masking)."""
    data = job.to_dict()
    if scope < Scope.WRITE:
        mask_job(data, job, settings)
    data["created"] = created
    return data


def progress_out(job: Job, scope: Scope, settings: Settings) -> Any:
    """A job's progress as the API shows it (secrets masked for read-only callers)."""
    return job.progress if scope >= Scope.WRITE else mask(job.progress, settings)
