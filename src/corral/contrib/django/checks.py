"""System checks: ``corral.E001`` no Corral backend in ``TASKS``, ``corral.E002`` a
Corral backend that cannot be set up from its ``OPTIONS``, ``corral.E003`` (with
``--deploy``, and before ``manage.py corral_worker`` starts) a store that cannot be
reached."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks

from corral._sync import run_sync
from corral.app import Corral
from corral.errors import CorralError
from corral.settings import mask_url

__all__ = ["BACKEND_PATH", "check_backends", "check_reachable", "corral_aliases"]

BACKEND_PATH = "corral.contrib.django.CorralBackend"
_PATHS = {BACKEND_PATH, "corral.contrib.django.backend.CorralBackend"}
#: Seconds the reachability check waits for the store.
PROBE_TIMEOUT = 3.0


def corral_aliases() -> list[str]:
    """The ``TASKS`` aliases whose backend is Corral's."""
    tasks = getattr(settings, "TASKS", None)
    if not isinstance(tasks, dict):
        return []
    return [
        alias
        for alias, params in tasks.items()
        if isinstance(params, dict) and params.get("BACKEND") in _PATHS
    ]


def check_backends(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[Any]:
    """E001 when no ``TASKS`` alias uses CorralBackend; E002 for each one whose
    backend cannot be created (bad OPTIONS)."""
    from corral.contrib.django._compat import task_backends

    aliases = corral_aliases()
    if not aliases:
        return [
            checks.Error(
                f"corral.contrib.django is installed but no TASKS backend is {BACKEND_PATH}",
                hint=(
                    'Add TASKS = {"default": {"BACKEND": "corral.contrib.django.CorralBackend", '
                    '"OPTIONS": {"url": "sqlite:///corral.db"}}} to your settings '
                    "(or a redis:// url)."
                ),
                id="corral.E001",
            )
        ]
    errors: list[Any] = []
    for alias in aliases:
        try:
            task_backends[alias]
        except Exception as exc:  # any way the backend cannot be made is this error
            text = str(exc)
            if not text.startswith(f"TASKS[{alias!r}]"):
                text = f"TASKS[{alias!r}] cannot be set up: {text}"
            errors.append(
                checks.Error(
                    text,
                    hint="See corral.contrib.django.CorralBackend for the OPTIONS it takes.",
                    id="corral.E002",
                )
            )
    return errors


def check_reachable(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[Any]:
    """E003 for each Corral backend whose store does not answer within a few seconds."""
    from corral.contrib.django._compat import task_backends

    errors: list[Any] = []
    for alias in corral_aliases():
        try:
            app = task_backends[alias].app
        except Exception:
            continue  # E002 says why
        problem = _probe(app.url, app.prefix)
        if problem:
            errors.append(
                checks.Error(
                    f"TASKS[{alias!r}]: the Corral store {mask_url(app.url)} cannot be "
                    f"reached: {problem}",
                    hint="Start Redis (or fix the url), or check the SQLite file's directory.",
                    id="corral.E003",
                )
            )
    return errors


def _probe(url: str, prefix: str) -> str:
    """ "" when the store answers, else why not."""

    async def probe() -> None:
        # A probe of its own: no retrying a lost connection for seconds.
        app = Corral(url, prefix=prefix, reconnect_timeout=0)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await app.queues()
        finally:
            await app.close()

    try:
        run_sync(probe())
    except TimeoutError:
        return f"no answer within {PROBE_TIMEOUT:g} s"
    except (CorralError, OSError) as exc:
        return str(exc) or type(exc).__name__
    return ""
