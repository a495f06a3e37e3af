"""Notifications: email and signed webhooks for job outcomes, delivered durably."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.errors import InvalidSignature
    from corral.notify.base import DeliveryError, Notice, NotifySettings, Target
    from corral.notify.clients import WebhookClients
    from corral.notify.email import Email
    from corral.notify.verification import verify
    from corral.notify.webhook import Webhook

__all__ = [
    "DeliveryError",
    "Email",
    "InvalidSignature",
    "Notice",
    "NotifySettings",
    "Target",
    "Webhook",
    "WebhookClients",
    "verify",
]

# Imported on first use: the targets need the ``corral[notify]`` extra (httpx,
# standardwebhooks...), and importing corral.notify.base must not. (``verify`` lives in
# ``verification``: a submodule named ``verify`` would shadow the function.)
_LAZY = {
    "DeliveryError": "corral.notify.base",
    "Notice": "corral.notify.base",
    "NotifySettings": "corral.notify.base",
    "Target": "corral.notify.base",
    "Email": "corral.notify.email",
    "InvalidSignature": "corral.errors",
    "Webhook": "corral.notify.webhook",
    "WebhookClients": "corral.notify.clients",
    "verify": "corral.notify.verification",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'corral.notify' has no attribute {name!r}")
