"""``corral audit [--limit N] [--before ID] [--json]``: the latest audit entries."""

from __future__ import annotations

import click

from corral.app import Corral
from corral.cli import output
from corral.cli.commands import json_option, run_closing, with_app

__all__ = ["audit"]


@click.command()
@click.option(
    "-n", "--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
    help="How many entries (newest first).",
)  # fmt: skip
@click.option("--before", metavar="ID", help="Only entries older than this one (paging).")
@json_option
@with_app
def audit(app: Corral, limit: int, before: str | None, as_json: bool) -> None:
    """Who did what through the HTTP API, the dashboard and the CLI, newest first."""

    async def go() -> None:
        output.audit(await app.audit_entries(limit, before), as_json, limit=limit)

    run_closing(app, go)
