"""Standard Webhooks secrets and signatures, shared by the sender
(:class:`~corral.notify.webhook.Webhook`) and the receiver (:func:`~corral.notify.verify`).

A secret is ``whsec_`` + the base64 of 24 to 64 random bytes. Several secrets rotate a
key: every one of them signs, so a receiver that knows any of them verifies.
"""

from __future__ import annotations

import base64
import binascii
import secrets as _random
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks.webhooks import Webhook as _Standard

from corral.errors import ConfigurationError

__all__ = ["SECRET_PREFIX", "check_secrets", "new_secret", "sign"]

SECRET_PREFIX = "whsec_"
_MIN_BYTES, _MAX_BYTES = 24, 64


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(32)).decode("ascii")


def _check_secret(secret: object, what: str) -> str:
    # The messages never quote the secret: they end up in logs and job errors.
    if not isinstance(secret, str):
        raise ConfigurationError(f"{what}: a secret must be a string, got {type(secret).__name__}")
    if not secret.startswith(SECRET_PREFIX):
        raise ConfigurationError(
            f"{what}: a secret must start with {SECRET_PREFIX!r} "
            "(make one with Webhook.new_secret())"
        )
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        # Unpadded base64 is accepted (the reference library pads it); nothing else is.
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"{what}: the part of the secret after {SECRET_PREFIX!r} is not valid base64"
        ) from None
    if not _MIN_BYTES <= len(raw) <= _MAX_BYTES:
        raise ConfigurationError(
            f"{what}: a secret must encode {_MIN_BYTES} to {_MAX_BYTES} random bytes, "
            f"this one encodes {len(raw)}"
        )
    return secret


def check_secrets(secret: object, what: str) -> tuple[str, ...]:
    """``secret`` (one, or a list for rotation: current first) as a tuple of valid
    secrets, else ConfigurationError naming the problem (never the secret)."""
    if isinstance(secret, str):
        return (_check_secret(secret, what),)
    if not isinstance(secret, Sequence) or not secret:
        raise ConfigurationError(
            f"{what}: secret must be a 'whsec_...' string or a non-empty list of them"
        )
    checked = tuple(_check_secret(s, what) for s in secret)
    return tuple(dict.fromkeys(checked))  # duplicates would only repeat a signature


def sign(secrets: Sequence[str], msg_id: str, timestamp: datetime, body: bytes) -> str:
    """The ``webhook-signature`` header: one ``v1,...`` signature per secret, space
    separated, the current secret's first."""
    return " ".join(_Standard(s).sign(msg_id, timestamp, body) for s in secrets)
