"""Signed webhooks: a job's outcome POSTed as JSON, per Standard Webhooks 1.0.

Each delivery carries ``webhook-id`` (the notice's id: the same on every retry, for the
receiver to dedupe on), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``, one per secret while a key
rotates). A 2xx is success. Anything else fails the attempt: 410 Gone disables the
endpoint; a redirect is never followed (it could lead past the SSRF guard, and the
signed request is meant for the configured URL) and, like a 5xx, a timeout or a
refused connection, is retried on the delivery schedule.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import certifi
import httpx
import orjson

from corral.errors import ConfigurationError
from corral.notify import clients, ssrf
from corral.notify.base import DeliveryError, Notice, NotifySettings, Target, check_events
from corral.notify.signing import check_secrets, new_secret, sign

__all__ = ["Webhook"]

# Set by the delivery itself: a user header must not replace them.
_RESERVED: Final = ("content-type", "content-length", "transfer-encoding", "host", "connection")
_TOKEN: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VALUE: Final = re.compile(r"^[\t\x20-\x7e]*$")
_EXCERPT: Final = 200
#: The most of a success's reply read (and dropped) to keep its connection.
_KEEP_READING: Final = 64 * 1024


def _version() -> str:
    from corral import __version__  # at call time: no import cycle if corral imports us

    return __version__


@functools.lru_cache(maxsize=4)
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    # The system's trust store (OpenSSL reads SSL_CERT_FILE / SSL_CERT_DIR, hence the
    # cache key) plus certifi's, for images that ship no CA bundle.
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=certifi.where())
    return context


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"Webhook url must be a string, got {type(url).__name__}")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise ConfigurationError(f"Webhook url {url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise ConfigurationError(f"Webhook url {url!r} must start with http:// or https://")
    if not parsed.host:
        raise ConfigurationError(f"Webhook url {url!r} has no host")
    return url.strip()


def _check_headers(headers: object) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError("Webhook headers must be a dict of header name -> value")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ConfigurationError(f"Webhook headers: {name!r} is not a valid header name")
        if not isinstance(value, str) or not _VALUE.match(value):
            raise ConfigurationError(
                f"Webhook headers: the value of {name!r} must be a string of printable "
                "ASCII on one line"
            )
        lowered = name.lower()
        if lowered.startswith("webhook-") or lowered in _RESERVED:
            raise ConfigurationError(
                f"Webhook headers: {name!r} is set by the delivery itself and cannot be replaced"
            )
        checked[name] = value
    return checked


class Webhook(Target):
    """POST each outcome in ``events`` to ``url``, signed with ``secret``.

    ``secret``: ``whsec_...`` (:meth:`new_secret` makes one), or a list of them to
    rotate keys (each signs; the first is the current one). ``headers``: extra
    headers (an API key...). ``result`` / ``traceback``: add the task's return value /
    the error's traceback to the body (off: bodies stay thin). ``timeout``: seconds
    per attempt (default ``NotifySettings.timeout``). ``name``: a label for logs and
    the dashboard.
    """

    kind: ClassVar[str] = "webhook"
    new_secret = staticmethod(new_secret)

    def __init__(
        self,
        url: str,
        *,
        secret: str | Sequence[str],
        events: Sequence[str] = ("completed", "failed"),
        headers: Mapping[str, str] | None = None,
        result: bool = False,
        traceback: bool = False,
        timeout: float | None = None,
        name: str | None = None,
    ) -> None:
        self.url = _check_url(url)
        self.secrets = check_secrets(secret, "Webhook")
        self.events = check_events(events, "Webhook")
        self.headers: Mapping[str, str] = _check_headers(headers)
        self.result = bool(result)
        self.traceback = bool(traceback)
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ConfigurationError(f"Webhook timeout must be > 0 seconds, got {timeout!r}")
        self.timeout = None if timeout is None else float(timeout)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigurationError(f"Webhook name must be a non-empty string, got {name!r}")
        self.name = name

    @property
    def secret(self) -> str:
        """The current secret (the first)."""
        return self.secrets[0]

    @property
    def key(self) -> str:
        # The secret is left out: rotating it must not make a new endpoint.
        identity = self.url + "\n" + ",".join(sorted(self.events))
        return "webhook:" + hashlib.sha256(identity.encode()).hexdigest()[:16]

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``: how errors and logs name the endpoint (a path can
        hold a credential, as Slack's webhook URLs do)."""
        parsed = httpx.URL(self.url)
        return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        return f"Webhook({self.origin!r}, events={sorted(self.events)}{label})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Webhook) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.key)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "url": self.url,
            "secret": list(self.secrets),
            "events": sorted(self.events),
            "headers": dict(self.headers),
            "result": self.result,
            "traceback": self.traceback,
            "timeout": self.timeout,
            "name": self.name,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Webhook:
        if not isinstance(data, Mapping) or data.get("kind", cls.kind) != cls.kind:
            raise ConfigurationError(f"not a stored webhook: {str(data)[:80]!r}")
        if "url" not in data or "secret" not in data:
            raise ConfigurationError("a stored webhook needs 'url' and 'secret'")
        # Keys this version does not know are ignored: a newer worker may have stored them.
        return cls(
            data["url"],
            secret=data["secret"],
            events=data.get("events", ("completed", "failed")),
            headers=data.get("headers"),
            result=data.get("result", False),
            traceback=data.get("traceback", False),
            timeout=data.get("timeout"),
            name=data.get("name"),
        )

    def signed_headers(
        self, msg_id: str, body: bytes, trace: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The headers one attempt sends: the user's, then the Standard Webhooks ones
        (signed now: the timestamp is the attempt's; ``msg_id`` is the same on every
        attempt) and the trace context, if any."""
        stamp = datetime.fromtimestamp(int(time.time()), UTC)
        headers = {"User-Agent": f"Corral-Webhooks/{_version()}", **self.headers}
        headers |= {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": sign(self.secrets, msg_id, stamp, body),
        }
        for name in ("traceparent", "tracestate"):
            if trace and trace.get(name):
                headers[name] = trace[name]
        return headers

    async def deliver(self, notice: Notice, settings: NotifySettings) -> None:
        body = orjson.dumps(notice.body(result=self.result, traceback=self.traceback))
        await self._post(body, self.signed_headers(notice.id, body, notice.trace), settings)

    async def send(self, payload: Any, *, id: str, settings: NotifySettings | None = None) -> None:
        """POST ``payload`` (any JSON value: your own event, not a job's outcome) to
        this webhook, signed like a notification, with ``id`` as its ``webhook-id``
        (keep it the same on every retry: the receiver dedupes on it). For a task
        that delivers webhooks itself and lets Corral retry it::

            @app.task(queue="webhooks", attempts=5, backoff=Backoff("exponential", base=5))
            async def deliver(webhook_id: str, url: str, payload: dict) -> None:
                await Webhook(url, secret=SECRET).send(payload, id=webhook_id)

        The same guard and rules as a notification's delivery (the SSRF guard with
        ``settings.allow``, no redirects, ``timeout``); raises
        :class:`~corral.notify.DeliveryError` when the attempt failed, with ``retry``
        False when trying again is pointless (410 Gone, an address refused)."""
        if not isinstance(id, str) or not id or not _VALUE.match(id):
            raise ConfigurationError(f"Webhook.send: id must be a non-empty string, got {id!r}")
        try:
            body = orjson.dumps(payload)
        except TypeError as exc:
            raise ConfigurationError(f"Webhook.send: the payload is not JSON: {exc}") from None
        await self._post(body, self.signed_headers(id, body), settings or NotifySettings())

    async def _post(self, body: bytes, headers: dict[str, str], settings: NotifySettings) -> None:
        """One signed attempt; DeliveryError says what went wrong."""
        timeout = self.timeout or settings.timeout
        allow = ssrf.AllowList.parse(settings.allow)
        where = f"webhook {self.name} ({self.origin})" if self.name else f"webhook {self.origin}"
        url = httpx.URL(self.url)
        trust = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        port = url.port or (443 if url.scheme == "https" else 80)
        key: clients.ClientKey = (url.scheme, url.raw_host.decode("ascii"), port, trust)
        try:
            # One budget for the whole attempt (every address tried, a slow trickle of
            # headers): httpx's timeout alone bounds each read, not their sum.
            async with (
                asyncio.timeout(timeout),
                clients.lease(key, _tls_context(*trust)) as client,
                ssrf.stream(
                    client,
                    "POST",
                    url,
                    allow=allow,
                    headers=headers,
                    content=body,
                    timeout=timeout,
                ) as response,
            ):
                if response.is_success:
                    await _drain(response)
                    return
                status = f"{response.status_code} {response.reason_phrase}".strip()
                excerpt = await _excerpt(response)
                location = response.headers.get("location", "")
        except DeliveryError as exc:  # from the guard: say which webhook
            raise DeliveryError(f"{where}: {exc}", retry=exc.retry, gone=exc.gone) from None
        except (TimeoutError, httpx.TimeoutException):
            raise DeliveryError(f"{where}: no answer within {timeout:g} s", retry=True) from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise DeliveryError(f"{where}: {reason}", retry=True) from None
        except OSError as exc:  # anything the transport did not wrap
            raise DeliveryError(f"{where}: {exc}", retry=True) from None
        reply = f": {excerpt!r}" if excerpt else ""
        if response.status_code == 410:
            raise DeliveryError(
                f"{where} answered {status}{reply}: the endpoint is gone and is disabled",
                gone=True,
            )
        if 300 <= response.status_code < 400:
            raise DeliveryError(
                f"{where} answered {status} to {location[:_EXCERPT]!r}: redirects are not "
                "followed, point the webhook at the final URL",
                retry=True,
            )
        raise DeliveryError(f"{where} answered {status}{reply}", retry=True)


async def _drain(response: httpx.Response) -> None:
    """Read a success's reply, if short, so that its connection can be kept: one whose
    reply was not read to the end is closed."""
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > _KEEP_READING:
            return


async def _excerpt(response: httpx.Response) -> str:
    """The start of the reply, on one line: enough to tell what went wrong without
    reading an endless body."""
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= 4 * _EXCERPT:
            break
    text = " ".join(data.decode("utf-8", "replace").split())
    return text[:_EXCERPT] + ("..." if len(text) > _EXCERPT else "")
