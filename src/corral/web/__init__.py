"""The HTTP API (FastAPI): ``create_app(corral)``; needs the ``web`` extra."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corral.errors import ConfigurationError

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]


def create_app(corral: Any, **options: Any) -> FastAPI:
    """See :func:`corral.web.app.create_app`."""
    try:
        from corral.web.app import create_app as build
    except ImportError as exc:
        raise ConfigurationError(
            f"the HTTP API needs the web extra: pip install 'corral[web]' ({exc.name} is missing)"
        ) from None
    return build(corral, **options)
