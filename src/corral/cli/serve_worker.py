"""One process of ``corral serve --workers N``.

uvicorn starts each worker process fresh and builds its app by importing
:func:`create` (a factory): the options travel from ``corral serve`` in one environment
variable, and each process imports the user's app itself, so each has its own backend
connection. Every worker gets the same session secret, so a dashboard session or form
started on one worker is accepted by another.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ENV", "FACTORY", "create", "options_env"]

#: The environment variable that carries the options to the worker processes.
ENV = "CORRAL_SERVE_WORKER"
#: What uvicorn imports in each worker.
FACTORY = "corral.cli.serve_worker:create"


def options_env(
    *, app_spec: str, url: str, api_keys: str, allow_unregistered: bool, secret: str
) -> str:
    """The options :func:`create` reads, as the value of :data:`ENV`."""
    options = {
        "app_spec": app_spec,
        "url": url,
        "api_keys": api_keys,
        "allow_unregistered": allow_unregistered,
        "secret": secret,
    }
    return json.dumps(options)


def create() -> FastAPI:
    """The app of one worker process (called by uvicorn in that process)."""
    from corral.cli.heap import settle_heap
    from corral.cli.loader import load_app
    from corral.web import create_app
    from corral.web.auth import parse_api_keys

    options: dict[str, Any] = json.loads(os.environ[ENV])
    app = load_app(options["app_spec"])
    app.url = options["url"]
    web = create_app(
        app,
        api_keys=parse_api_keys(options["api_keys"]),
        allow_unregistered=options["allow_unregistered"],
        secret=options["secret"],
    )
    settle_heap()
    return web
