"""Flask glue: the :class:`FlaskCorral` extension (configuration from ``app.config``,
tasks run inside the app context, ``flask corral worker``).

>>> corral = Corral()
>>> ext = FlaskCorral(corral=corral)
>>> @corral.task(queue="reports")
... def build_report(org: str) -> str:
...     return current_app.config["REPORTS_DIR"] + "/" + org  # an app context is pushed
>>> def create_app() -> Flask:
...     app = Flask(__name__)
...     app.config["CORRAL_URL"] = "redis://localhost:6379/0"
...     ext.init_app(app)
...     return app

Then ``flask --app myapp corral worker`` runs the jobs.
"""

from __future__ import annotations

try:
    import click
    from flask import Flask, current_app
    from flask.cli import AppGroup
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        f"corral.contrib.flask needs Flask: pip install 'corral[flask]' ({exc.name} is missing)",
        name=exc.name,
    ) from None

import contextlib
import os
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from corral.app import Corral
from corral.context import JobContext
from corral.errors import ConfigurationError, CorralError
from corral.settings import resolve_url

__all__ = ["FlaskCorral", "corral_cli"]


class FlaskCorral:
    """Corral as a Flask extension: ``FlaskCorral(app)``, or ``ext = FlaskCorral()``
    then ``ext.init_app(app)`` in an app factory.

    ``corral`` is the app your tasks are registered on (default: a new ``Corral()``,
    as ``ext.corral``). ``init_app`` reads ``app.config``: ``CORRAL_URL`` (else
    ``CORRAL_URL``/``REDIS_URL`` from the environment), and for ``flask corral worker``
    ``CORRAL_QUEUES`` (a list or comma-separated) and ``CORRAL_CONCURRENCY``; for
    ``flask corral serve`` ``CORRAL_API_KEYS`` and ``CORRAL_SECRET``. It stores
    the extension as ``app.extensions["corral"]`` and adds the ``flask corral`` commands.

    Every job a worker of this Corral app runs runs inside an app context of the Flask
    app last given to ``init_app`` (one Flask app per worker process): ``current_app``,
    a fresh ``g`` per job, and ``teardown_appcontext`` functions after each job.
    """

    def __init__(self, app: Flask | None = None, *, corral: Corral | None = None) -> None:
        self.corral = corral if corral is not None else Corral()
        self.app: Flask | None = None
        self.corral.around_tasks(self._app_context)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Configure from ``app.config``, register the extension and the CLI."""
        url = app.config.get("CORRAL_URL")
        if url is not None:
            if not isinstance(url, str) or not url:
                raise ConfigurationError(
                    f"app.config['CORRAL_URL'] must be a backend URL string, got {url!r}"
                )
            chosen = resolve_url(url)
            if chosen != self.corral.url:
                # Connections opened for the old URL (by *_sync calls) must not be reused.
                with contextlib.suppress(CorralError):
                    self.corral.close_sync()
                self.corral.url = chosen
        self.queues(app)  # a bad value fails here, not when the worker starts
        self.concurrency(app)
        app.extensions["corral"] = self
        if "corral" not in app.cli.commands:
            app.cli.add_command(corral_cli)
        self.app = app

    def _app_context(self, ctx: JobContext) -> AbstractContextManager[Any]:
        if self.app is None:
            return contextlib.nullcontext()
        return self.app.app_context()

    @staticmethod
    def queues(app: Flask) -> list[str] | None:
        """``app.config["CORRAL_QUEUES"]`` as a list (None when unset)."""
        raw = app.config.get("CORRAL_QUEUES")
        if raw is None:
            return None
        if isinstance(raw, str):
            names = [q.strip() for q in raw.split(",") if q.strip()]
        elif isinstance(raw, Sequence) and all(isinstance(q, str) for q in raw):
            names = [q.strip() for q in raw if q.strip()]
        else:
            names = []
        if not names:
            raise ConfigurationError(
                "app.config['CORRAL_QUEUES'] must be queue names (a list, or a "
                f"comma-separated string), got {raw!r}"
            )
        return names

    @staticmethod
    def concurrency(app: Flask) -> int | None:
        """``app.config["CORRAL_CONCURRENCY"]`` as an int (None when unset)."""
        raw = app.config.get("CORRAL_CONCURRENCY")
        if raw is None:
            return None
        try:
            value = int(raw) if not isinstance(raw, bool | float) else 0
        except (TypeError, ValueError):
            value = 0
        if value < 1:
            raise ConfigurationError(
                f"app.config['CORRAL_CONCURRENCY'] must be a whole number >= 1, got {raw!r}"
            )
        return value


def _extension() -> FlaskCorral:
    ext = current_app.extensions.get("corral")
    if not isinstance(ext, FlaskCorral):
        raise click.ClickException(
            "this Flask app has no Corral extension: call FlaskCorral(app) or ext.init_app(app)"
        )
    return ext


#: ``flask corral ...``: added to ``app.cli`` by :meth:`FlaskCorral.init_app`.
corral_cli = AppGroup("corral", help="Corral: run this app's background jobs, serve its dashboard.")


@corral_cli.command("worker")
@click.option(
    "-q",
    "--queues",
    help="Comma-separated queues, served in this order (default: CORRAL_QUEUES of "
    "app.config, else $CORRAL_QUEUES, else the queues of the app's tasks).",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    help="Jobs run at once (default: CORRAL_CONCURRENCY of app.config, else "
    "$CORRAL_CONCURRENCY, else 10).",
)
@click.option("--lease", type=click.FloatRange(min=0.1), default=8.0, show_default=True)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds running jobs get to finish on shutdown.",
)
@click.option("--max-stalls", type=click.IntRange(min=0), default=1, show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    envvar="CORRAL_LOG_FORMAT",
    default="text",
    show_default=True,
)
@click.option(
    "--loop",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    envvar="CORRAL_LOOP",
    default="auto",
    show_default=True,
)
def worker_command(
    queues: str | None,
    concurrency: int | None,
    lease: float,
    grace: float,
    max_stalls: int,
    log_level: str,
    log_format: str,
    loop: str,
) -> None:
    """Run this app's jobs until SIGTERM/SIGINT (a second signal stops at once), each
    inside the app context."""
    from corral.cli.commands import run
    from corral.cli.worker_process import run_worker

    ext = _extension()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
        names = names or ext.queues(app)
        concurrency = concurrency or ext.concurrency(app)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    code = run(
        lambda: run_worker(
            ext.corral,
            names,
            concurrency=concurrency,
            lease=lease,
            grace=grace,
            max_stalls=max_stalls,
            log_level=log_level,
            log_format=log_format,
        ),
        loop=loop,
    )
    sys.exit(code)


@corral_cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="NAME=TOKEN:SCOPE",
    help="A key (repeatable); also CORRAL_API_KEYS of app.config and $CORRAL_API_KEYS.",
)
@click.option(
    "--allow-unregistered", is_flag=True, help="Accept task names this app has not registered."
)
@click.option(
    "--insecure-public-without-auth",
    is_flag=True,
    help="Serve on a non-loopback address with NO authentication.",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info"
)
def serve_command(
    host: str,
    port: int,
    api_keys: tuple[str, ...],
    allow_unregistered: bool,
    insecure_public_without_auth: bool,
    log_level: str,
) -> None:
    """Serve the dashboard (at /) and HTTP API (at /api/v1) of this app's jobs
    (needs corral[web]); CORRAL_SECRET of app.config signs the sessions."""
    from corral.cli.serve import serve_corral

    ext = _extension()
    configured = current_app.config.get("CORRAL_API_KEYS") or ""
    if not isinstance(configured, str):
        configured = ",".join(configured)
    serve_corral(
        ext.corral,
        host=host,
        port=port,
        api_keys=[*api_keys, configured, os.environ.get("CORRAL_API_KEYS", "")],
        allow_unregistered=allow_unregistered,
        insecure_public_without_auth=insecure_public_without_auth,
        log_level=log_level,
        secret=current_app.config.get("CORRAL_SECRET") or os.environ.get("CORRAL_SECRET"),
    )
