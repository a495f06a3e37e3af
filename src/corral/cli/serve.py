"""``corral serve``: the HTTP API under uvicorn."""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Sequence

import click

from corral.app import Corral
from corral.cli.heap import settle_heap
from corral.cli.loader import load_app
from corral.errors import ConfigurationError

__all__ = ["MAX_WORKERS", "serve", "serve_corral"]

#: Most processes ``--workers`` starts.
MAX_WORKERS = 64


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.argument("app_spec", metavar="MODULE:APP")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="NAME=TOKEN:SCOPE",
    help="A key's name (shown in the audit log), bearer token and scope (read, write, "
    "admin); NAME= may be left out. Repeatable. Also $CORRAL_API_KEYS (comma-separated).",
)
@click.option(
    "--allow-unregistered", is_flag=True, help="Accept task names this app has not registered."
)
@click.option(
    "--insecure-public-without-auth",
    is_flag=True,
    help="Serve on a non-loopback address with NO authentication (anyone who can reach it "
    "can enqueue and delete jobs).",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info"
)
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_WORKERS),
    default=1,
    show_default=True,
    help="Processes serving the same port (each with its own backend connection): "
    "about one per core.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    app_spec: str,
    host: str,
    port: int,
    api_keys: tuple[str, ...],
    allow_unregistered: bool,
    insecure_public_without_auth: bool,
    log_level: str,
    workers: int,
) -> None:
    """Serve the dashboard (at /) and the HTTP API (at /api/v1) of MODULE:APP."""
    try:
        app = load_app(app_spec)
        if ctx.obj and ctx.obj.get("url"):
            from corral.settings import resolve_url

            app.url = resolve_url(ctx.obj["url"])
    except ConfigurationError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)
    serve_corral(
        app,
        host=host,
        port=port,
        api_keys=[*api_keys, os.environ.get("CORRAL_API_KEYS", "")],
        allow_unregistered=allow_unregistered,
        insecure_public_without_auth=insecure_public_without_auth,
        log_level=log_level,
        secret=os.environ.get("CORRAL_SECRET") or None,
        workers=workers,
        app_spec=app_spec,
    )


def serve_corral(
    app: Corral,
    *,
    host: str,
    port: int,
    api_keys: Sequence[str],
    allow_unregistered: bool,
    insecure_public_without_auth: bool,
    log_level: str,
    secret: str | None = None,
    workers: int = 1,
    app_spec: str | None = None,
) -> None:
    """Serve ``app``'s dashboard and API under uvicorn until interrupted (``corral
    serve``, ``flask corral serve``); ``api_keys`` are ``NAME=TOKEN:SCOPE`` specs
    (each may hold several, comma-separated). Refuses a public address without keys
    unless ``insecure_public_without_auth``; exits 2 on bad keys. ``secret`` signs the
    dashboard's session cookies (default: derived from the keys). ``workers`` > 1
    serves from that many processes (uvicorn's workers), each importing ``app_spec``
    (``MODULE:APP``) itself: it is needed then."""
    if workers > 1 and app_spec is None:
        raise click.UsageError("--workers above 1 needs the app as MODULE:APP")
    try:
        import uvicorn

        from corral.web import create_app
        from corral.web.auth import parse_api_keys
    except ImportError:
        raise click.ClickException(
            "the HTTP API needs the web extra: pip install 'corral[web]'"
        ) from None
    try:
        keys = parse_api_keys(",".join(api_keys))
    except ConfigurationError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)
    if not keys and not _is_loopback(host):
        if not insecure_public_without_auth:
            click.secho(
                f"error: refusing to serve on {host} without an API key: add --api-key "
                "NAME=TOKEN:admin (or set CORRAL_API_KEYS), or pass --insecure-public-without-auth",
                fg="red",
                err=True,
            )
            sys.exit(2)
        click.secho(
            f"WARNING: serving on {host} with NO authentication", fg="yellow", bold=True, err=True
        )
    shown = f"[{host}]" if ":" in host else host
    if workers > 1:
        from corral.cli.serve_worker import ENV, FACTORY, options_env
        from corral.web.dashboard.session import default_secret

        assert app_spec is not None
        # One secret for every process (without keys, each would draw its own).
        shared = secret or default_secret([key.token for key in keys])
        os.environ[ENV] = options_env(
            app_spec=app_spec,
            url=app.url,
            api_keys=",".join(api_keys),
            allow_unregistered=allow_unregistered,
            secret=shared,
        )
        click.echo(f"dashboard: http://{shown}:{port}/   API: http://{shown}:{port}/api/v1/docs")
        click.echo(f"serving from {workers} worker processes")
        uvicorn.run(
            FACTORY, factory=True, workers=workers, host=host, port=port, log_level=log_level
        )
        return
    web = create_app(
        app,
        api_keys=keys,
        allow_unregistered=allow_unregistered,
        secret=secret,
    )
    click.echo(f"dashboard: http://{shown}:{port}/   API: http://{shown}:{port}/api/v1/docs")
    settle_heap()
    uvicorn.run(web, host=host, port=port, log_level=log_level)
