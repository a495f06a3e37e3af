"""Finding the user's app from a ``module:attribute`` string."""

from __future__ import annotations

import importlib
import os
import sys

from corral.app import Corral
from corral.errors import ConfigurationError

__all__ = ["load_app"]


def load_app(spec: str) -> Corral:
    """Import ``package.module:app`` (attribute defaults to ``app``) from the working
    directory; raises ConfigurationError saying what was wrong."""
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "app"
    if not module_name:
        raise ConfigurationError(f"app {spec!r} must look like 'package.module:app'")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigurationError(
                f"cannot import {module_name!r} (from {spec!r}): no such module in "
                f"{os.getcwd()} or on PYTHONPATH"
            ) from None
        raise
    app = getattr(module, attribute, None)
    if app is None:
        raise ConfigurationError(f"module {module_name!r} has no attribute {attribute!r}")
    if not isinstance(app, Corral):
        raise ConfigurationError(
            f"{spec!r} is a {type(app).__name__}, not a Corral app (corral.Corral(...))"
        )
    return app
