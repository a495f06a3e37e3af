"""``corral notify endpoints`` and ``corral notify enable KEY``: notification endpoints
that are disabled (they answered 410) or failing, and enabling one again."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import click
from rich.table import Table
from rich.text import Text

from corral.app import Corral
from corral.cli import output
from corral.cli.commands import json_option, record_action, run_closing, with_app

__all__ = ["notify"]


@click.group()
def notify() -> None:
    """Notification endpoints (webhooks, email relays): state, enabling."""


@notify.command()
@json_option
@with_app
def endpoints(app: Corral, as_json: bool) -> None:
    """Endpoints that are disabled or whose last delivery failed."""

    async def go() -> None:
        states = await app.notify_endpoints()
        if as_json:
            output._json([dataclasses.asdict(s) for s in states])
            return
        if not states:
            output._out().print("every endpoint is fine: none disabled, none failing")
            return
        table = Table("key", "endpoint", "state", "since (UTC)", "reason")
        for s in states:
            since = datetime.fromtimestamp(s.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            state = "disabled" if s.disabled else "failing"
            table.add_row(*(Text(c) for c in (s.key, s.label, state, since, s.reason)))
        table.columns[4].overflow = table.columns[1].overflow = "fold"
        output._out().print(table)
        if any(s.disabled for s in states):
            key = next(s.key for s in states if s.disabled)
            output._out().print(f"enable one again: corral notify enable {key}", markup=False)

    run_closing(app, go)


@notify.command()
@click.argument("key")
@with_app
def enable(app: Corral, key: str) -> None:
    """Deliver to endpoint KEY again (as `corral notify endpoints` lists it)."""

    async def go() -> None:
        if not await app.enable_notify_endpoint(key):
            raise click.ClickException(
                f"no endpoint {key!r} is disabled or failing (see `corral notify endpoints`)"
            )
        await record_action(app, "notify.enable", key)
        click.echo(f"endpoint {key} enabled: deliveries to it go out again")

    run_closing(app, go)
