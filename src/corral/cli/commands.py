"""What every ``corral`` command shares: exit codes, error handling, the app."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
import orjson

from corral.app import Corral
from corral.cli.loader import load_app
from corral.errors import (
    BackendError,
    ConfigurationError,
    CorralError,
    JobCancelled,
    JobFailed,
    JobNotFound,
    ResultTimeout,
    ValidationError,
)

__all__ = [
    "EXIT_BACKEND",
    "EXIT_JOB_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "fail",
    "json_arg",
    "loop_factory",
    "run",
    "with_app",
    "with_url",
]

T = TypeVar("T")

EXIT_BACKEND, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_JOB_FAILED, EXIT_TIMEOUT = 1, 2, 3, 4, 5


def fail(message: str, code: int) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


#: What ``--loop`` accepts: ``auto`` is uvloop where it is installed, else asyncio's.
LOOPS = ("auto", "asyncio", "uvloop")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop for ``--loop``; None means asyncio's default loop."""
    if choice not in LOOPS:
        raise ConfigurationError(f"--loop must be one of {', '.join(LOOPS)}, not {choice!r}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigurationError(
                "--loop uvloop needs the uvloop package (pip install uvloop; "
                "not available on Windows)"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(make: Callable[[], Coroutine[Any, Any, T]], loop: str = "asyncio") -> T:
    """Run one command's coroutine, turning Corral errors into a message + exit code.

    ``loop`` picks the event loop (see :data:`LOOPS`); long-running commands (the
    worker) use ``auto``: uvloop cuts the event loop's share of every job."""
    try:
        with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
            return runner.run(make())
    except JobNotFound as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except (JobFailed, JobCancelled) as exc:
        fail(str(exc), EXIT_JOB_FAILED)
    except ResultTimeout as exc:
        fail(str(exc), EXIT_TIMEOUT)
    except (ConfigurationError, ValidationError) as exc:
        fail(str(exc), EXIT_USAGE)
    except (BackendError, CorralError) as exc:
        fail(str(exc), EXIT_BACKEND)
    raise AssertionError("unreachable")


def _app(ctx: click.Context) -> Corral:
    obj = ctx.ensure_object(dict)
    if "app" not in obj:
        try:
            spec = obj.get("app_spec")
            obj["app"] = load_app(spec) if spec else Corral(obj.get("url"))
            if spec and obj.get("url"):
                obj["app"] = with_url(obj["app"], obj["url"])
        except ConfigurationError as exc:
            fail(str(exc), EXIT_USAGE)
    app: Corral = obj["app"]
    return app


def with_url(app: Corral, url: str) -> Corral:
    from corral.settings import resolve_url

    app.url = resolve_url(url)
    return app


def json_arg(name: str, raw: str | None, kind: type) -> Any:
    if raw is None:
        return kind()
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=name) from None
    if not isinstance(value, kind):
        want = "a JSON array" if kind is list else "a JSON object"
        raise click.BadParameter(f"must be {want}, got {raw!r}", param_hint=name)
    return value


def with_app(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the app (from --app, else a bare app on the URL)."""

    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return fn(_app(ctx), *args, **kwargs)

    return wrapper
