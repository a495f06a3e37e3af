"""Verifying a Corral webhook on the receiving side (any Standard Webhooks sender, in
fact): the ``webhook-*`` headers checked against the raw body with the reference
``standardwebhooks`` library, a timestamp within 5 minutes of now (the standard's
tolerance against replays), and a signature made with one of the secrets given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook as _Standard
from standardwebhooks.webhooks import WebhookVerificationError

from corral.errors import InvalidSignature, ValidationError
from corral.notify.signing import check_secrets

__all__ = ["InvalidSignature", "verify"]

_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def verify(body: bytes | str, headers: Mapping[str, str], secret: str | Sequence[str]) -> Any:
    """Check a received webhook and return its parsed JSON body.

    ``body``: the raw request body exactly as received (not re-serialized JSON).
    ``headers``: the request headers (any mapping; names in any case). ``secret``: the
    endpoint's ``whsec_...`` secret, or a list while a key rotates (any may match).
    Raises :class:`~corral.errors.InvalidSignature` when the webhook must be rejected,
    ConfigurationError when a secret is malformed.
    """
    secrets = check_secrets(secret, "verify()")
    received = {str(k).lower(): str(v) for k, v in headers.items()}
    missing = [name for name in _HEADERS if not received.get(name)]
    if missing:
        raise InvalidSignature(f"webhook rejected: missing header(s) {', '.join(missing)}")
    failure: WebhookVerificationError | None = None
    for candidate in secrets:
        try:
            _Standard(candidate).verify(body, received, json_parse=False)
        except WebhookVerificationError as exc:
            # The header and timestamp checks fail alike for every secret: the first
            # failure names the reason.
            failure = failure or exc
            continue
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"webhook body is not JSON: {exc}") from None
    raise InvalidSignature(
        f"webhook {received['webhook-id']!r} rejected: {failure} "
        f"(checked with {len(secrets)} secret{'s' if len(secrets) > 1 else ''})"
    )
