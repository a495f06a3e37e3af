"""What every ``corral`` command shares: exit codes, error handling, the app."""

from __future__ import annotations

import asyncio
import functools
import getpass
import os
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
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
    "add_shared_options",
    "app_of",
    "fail",
    "json_arg",
    "json_option",
    "loop_factory",
    "operator",
    "record_action",
    "run",
    "run_closing",
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


def operator() -> str:
    """Who the audit log says ran a command: ``cli:USER@HOST``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"cli:{user}@{socket.gethostname()}"


async def record_action(app: Corral, action: str, target: str, detail: Any = None) -> None:
    """Record a done action in the audit log, as the API and the dashboard do theirs.
    A store that cannot take the entry gets a warning; the action stands."""
    try:
        await app.record_audit(operator(), action, target, detail)
    except CorralError as exc:
        click.secho(f"warning: audit entry not recorded: {exc}", fg="yellow", err=True)


def run_closing(app: Corral, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """:func:`run` one command's coroutine, then close the app whatever happened."""

    async def main() -> None:
        try:
            await make()
        finally:
            await app.close()

    run(main)


def app_of(ctx: click.Context) -> Corral:
    """The command's app (from --app, else a bare app on the URL), made once."""
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


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # Given after the command: wins over the same option given before it (the group's
    # callback has already stored that one; the app is made later, from ctx.obj).
    if value is not None:
        ctx.ensure_object(dict)[param.name or ""] = value


def _json_flag(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    return value or bool(ctx.ensure_object(dict).get("json"))


#: ``--json`` on a command; ``corral --json COMMAND`` means the same.
json_option = click.option(
    "--json", "as_json", is_flag=True, callback=_json_flag, help="Machine-readable output."
)


def add_shared_options(command: click.Command, *, app: bool = True) -> None:
    """Let ``--url`` (and ``--app``) follow the subcommand too, as users type them."""
    command.params.append(
        click.Option(
            ["--url"],
            expose_value=False,
            callback=_remember,
            help="Backend URL (default: $CORRAL_URL, $REDIS_URL, sqlite:///corral.db).",
        )
    )
    if app:
        command.params.append(
            click.Option(
                ["--app", "app_spec"],
                metavar="MODULE:APP",
                expose_value=False,
                callback=_remember,
                help="Your app, for task defaults (default: $CORRAL_APP).",
            )
        )


def with_url(app: Corral, url: str) -> Corral:
    from corral.settings import resolve_url

    app.url = resolve_url(url)
    return app


def json_arg(name: str, raw: str | None, kind: type) -> Any:
    """Parse a ``--args``/``--kwargs`` value: JSON text, ``@FILE`` or ``-`` (stdin)."""
    if raw is None:
        return kind()
    if raw == "-":
        raw = sys.stdin.read()
    elif raw.startswith("@"):
        try:
            raw = Path(raw[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise click.BadParameter(
                f"cannot read {raw[1:]!r}: {reason}", param_hint=name
            ) from None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=name) from None
    if not isinstance(value, kind):
        want = "a JSON array" if kind is list else "a JSON object"
        shown = raw if len(raw) <= 60 else f"{raw[:60]}…"
        raise click.BadParameter(f"must be {want}, got {shown!r}", param_hint=name)
    return value


def with_app(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the app (from --app, else a bare app on the URL)."""

    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return fn(app_of(ctx), *args, **kwargs)

    return wrapper
