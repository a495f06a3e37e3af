"""The SMTP relay notifications are sent through: its URL and one send.

``CORRAL_SMTP_URL`` (or ``NotifySettings(smtp_url=...)``) names the relay:

- ``smtp://user:pass@host:587``: STARTTLS, required. A server that does not offer it
  is refused (never a silent fall back to plain text, which is what a man in the
  middle stripping STARTTLS would want).
- ``smtps://user:pass@host:465``: TLS from the first byte (implicit TLS).
- ``smtp://host:25?tls=none``: no TLS at all, only when asked for in so many words
  (a relay on the same host or a test mail catcher).

User and password are percent-decoded (``%40`` for ``@``...). ``?ca=/path/ca.pem``
trusts a private CA (a self-hosted relay, the tests) in addition to the system's.
Default ports: 587 (STARTTLS), 465 (implicit TLS), 25 (no TLS).

Sending uses aiosmtplib. How a failure is reported (:class:`DeliveryError`): a 4xx
reply, a refused or lost connection, a timeout or a failed TLS handshake is worth
retrying (``retry=True``); a 5xx reply, a rejected login and a relay without
STARTTLS are not.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from corral.errors import ConfigurationError
from corral.notify.base import DeliveryError, NotifySettings
from corral.settings import mask_url

if TYPE_CHECKING:
    import aiosmtplib

__all__ = ["SCHEMES", "SmtpRelay", "parse_smtp_url", "send_message"]

log = logging.getLogger("corral.notify")

Security = Literal["starttls", "implicit", "none"]

SCHEMES: Final = ("smtp", "smtps")
_DEFAULT_PORTS: Final[dict[Security, int]] = {"starttls": 587, "implicit": 465, "none": 25}
_OPTIONS: Final = ("ca", "tls")


@dataclass(frozen=True, slots=True)
class SmtpRelay:
    """A parsed relay URL. ``security``: ``starttls`` (required), ``implicit`` TLS or
    ``none``. ``ca_file``: extra CA certificates to trust (PEM)."""

    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    def __str__(self) -> str:
        how = {"starttls": "STARTTLS", "implicit": "TLS", "none": "no TLS"}[self.security]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"SMTP relay {host}:{self.port} ({how})"


def parse_smtp_url(url: str) -> SmtpRelay:
    """The relay ``url`` names; ConfigurationError (password masked) when it is wrong."""
    shown = _masked(url) if isinstance(url, str) else repr(url)

    def bad(why: str) -> ConfigurationError:
        return ConfigurationError(f"bad SMTP relay URL {shown!r}: {why}")

    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("the SMTP relay URL is empty (set CORRAL_SMTP_URL)")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise bad("the port must be a number from 1 to 65535") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise bad("the scheme must be smtp:// (STARTTLS) or smtps:// (implicit TLS)")
    if not parts.hostname:
        raise bad("no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise bad("a relay URL has no path: smtp://user:password@host:port")
    options = _options(parts.query, bad)
    security = _security(scheme, options.get("tls"), bad)
    if port == 0:
        raise bad("the port must be a number from 1 to 65535")
    ca_file = options.get("ca") or None
    if ca_file is not None and security == "none":
        raise bad("ca= has no use with tls=none")
    if ca_file is not None and not os.path.isfile(ca_file):
        raise bad(f"the CA file {ca_file!r} does not exist")
    return SmtpRelay(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[security],
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        ca_file=ca_file,
    )


def _masked(url: str) -> str:
    # The password, and the user name too: Postmark's SMTP user is its API token.
    return re.sub(r"(?<=://)[^/?#]*@", "***@", mask_url(url), count=1)


def _options(query: str, bad: Callable[[str], ConfigurationError]) -> dict[str, str]:
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise bad(f"cannot read the options {query!r}") from None
    unknown = sorted(set(parsed) - set(_OPTIONS))
    if unknown:
        raise bad(f"unknown option {', '.join(unknown)} (known: {', '.join(_OPTIONS)})")
    return {name: values[-1] for name, values in parsed.items()}


def _security(scheme: str, tls: str | None, bad: Callable[[str], ConfigurationError]) -> Security:
    if scheme == "smtps":
        if tls not in (None, "implicit"):
            raise bad(f"tls={tls} does not go with smtps:// (TLS from the first byte)")
        return "implicit"
    if tls in (None, "starttls"):
        return "starttls"
    if tls == "none":
        return "none"
    raise bad(f"tls={tls}: use tls=none for a relay without TLS (smtp:// requires STARTTLS)")


@functools.lru_cache(maxsize=8)
def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    # Certificates and host names are always checked; ca= adds to the system's CAs.
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


def _client(relay: SmtpRelay, timeout: float) -> aiosmtplib.SMTP:
    try:
        import aiosmtplib
    except ImportError:  # pragma: no cover - the notify extra is missing
        raise DeliveryError(
            "sending email needs aiosmtplib: pip install 'corral[notify]'", retry=False
        ) from None
    tls = None if relay.security == "none" else _tls_context(relay.ca_file)
    return aiosmtplib.SMTP(
        hostname=relay.host,
        port=relay.port,
        use_tls=relay.security == "implicit",
        start_tls=False,  # done by hand below: required, not opportunistic
        tls_context=tls,
        timeout=timeout,
    )


async def send_message(message: EmailMessage, settings: NotifySettings) -> None:
    """Send ``message`` (From, To/Cc set) through the relay of ``settings`` within
    ``settings.timeout`` seconds; raise :class:`DeliveryError` when it was not accepted.

    Recipients the relay refuses while it accepts others are logged, not retried (a
    retry would send the message again to those who got it)."""
    url = settings.relay_url
    if not url:
        raise DeliveryError(
            "no SMTP relay configured: set CORRAL_SMTP_URL or NotifySettings(smtp_url=...)",
            retry=False,
        )
    try:
        relay = parse_smtp_url(url)
    except ConfigurationError as exc:
        raise DeliveryError(str(exc), retry=False) from None
    client = _client(relay, settings.timeout)
    try:
        async with asyncio.timeout(settings.timeout):
            await _transact(client, relay, message)
    except DeliveryError:
        raise
    except TimeoutError:
        raise DeliveryError(
            f"{relay}: no answer within {settings.timeout:g} s", retry=True
        ) from None
    except Exception as exc:
        raise _failure(relay, exc) from None
    finally:
        # Outside the deadline: once DATA is answered the email is sent, and nothing
        # that happens while hanging up may turn that into a failure (and a resend).
        await _hang_up(client)


async def _transact(client: aiosmtplib.SMTP, relay: SmtpRelay, message: EmailMessage) -> None:
    await client.connect()
    if relay.security == "starttls":
        await client.ehlo()
        if not client.supports_extension("starttls"):
            raise DeliveryError(
                f"{relay} does not offer STARTTLS, which smtp:// requires; nothing was "
                "sent (use smtps:// for implicit TLS, or ?tls=none to send without TLS)",
                retry=False,
            )
        await client.starttls()
    if relay.username is not None:
        await client.ehlo()
        if not client.supports_extension("auth"):
            raise DeliveryError(
                f"{relay} does not offer AUTH, but the URL has credentials", retry=False
            )
        await client.login(relay.username, relay.password or "")
    refused, _ = await client.send_message(message)
    if refused:
        log.warning(
            "%s refused some recipients of %s (the others got it): %s",
            relay,
            message["Message-ID"],
            "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in refused.items()),
        )


_HANG_UP_TIMEOUT: Final = 1.0


async def _hang_up(client: aiosmtplib.SMTP) -> None:
    """QUIT, close, and wait (briefly) for the socket to be closed, so none is left
    behind a TLS shutdown still in progress; never raises."""
    transport = client.transport
    try:
        async with asyncio.timeout(_HANG_UP_TIMEOUT):
            if client.is_connected:
                await client.quit()
    except Exception:
        pass  # the relay may be gone already: nothing to be polite to
    client.close()
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return
    # Closing a TLS connection takes a round trip; asyncio has no event for its end.
    deadline = asyncio.get_running_loop().time() + _HANG_UP_TIMEOUT
    while sock.fileno() != -1 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _failure(relay: SmtpRelay, exc: Exception) -> DeliveryError:
    """The DeliveryError for an aiosmtplib (or socket) error: 4xx and network trouble
    are retried, 5xx and refused logins are not."""
    import aiosmtplib

    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError):
            # A certificate that does not verify, or a failed handshake: nothing was
            # sent. Retried: the usual causes (a relay's certificate being renewed, a
            # node with a stale one, interference on the path) pass without a change
            # here, and a lasting misconfiguration ends dead-lettered with this reason.
            reason = getattr(cause, "verify_message", None) or cause.reason or str(cause)
            return DeliveryError(f"{relay}: TLS handshake failed: {reason}", retry=True)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        replies = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        transient = any(400 <= r.code < 500 for r in exc.recipients)
        return DeliveryError(f"{relay} refused every recipient: {replies}", retry=transient)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError) and exc.code >= 500:
        return DeliveryError(
            f"{relay} rejected the login (wrong user name or password?): {exc.code} {exc.message}",
            retry=False,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        what = type(exc).__name__.removeprefix("SMTP")
        text = f"{relay} answered {exc.code} {exc.message} ({what})"
        return DeliveryError(text, retry=not 500 <= exc.code < 600)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return DeliveryError(f"{relay}: {exc.message}", retry=False)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return DeliveryError(f"{relay}: timed out ({exc})", retry=True)
    if isinstance(exc, aiosmtplib.SMTPException | OSError):
        # Refused or lost connections, and protocol hiccups: try again later.
        return DeliveryError(f"{relay}: {exc}", retry=True)
    return DeliveryError(f"{relay}: {type(exc).__name__}: {exc}", retry=True)
