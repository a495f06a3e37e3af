"""``corral history [QUEUE]``: jobs completed and failed over the last hour or day, as
the dashboard's overview charts show them, in sparklines that fit the terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import click

from corral.app import Corral
from corral.cli import output
from corral.cli.commands import json_option, run_closing, with_app
from corral.cli.queue_ops import known_queue
from corral.history import History, Span

__all__ = ["history", "sparkline"]

BARS = "▁▂▃▄▅▆▇█"
_WORDS = {"hour": "the last hour, a point a minute", "day": "the last day, a point every 15 min"}


def sparkline(values: list[int], width: int) -> str:
    """``values`` as one character each (added in runs when there are more than
    ``width``): ``·`` for none, then eight heights up to the largest."""
    per = max(1, -(-len(values) // max(width, 1)))  # ceil: how many values per character
    merged = [sum(values[i : i + per]) for i in range(0, len(values), per)]
    top = max(merged, default=0)
    return "".join(
        "·" if v == 0 else BARS[min(len(BARS) - 1, (v * len(BARS) - 1) // top)] for v in merged
    )


def _show(found: History) -> None:
    console = output.console()
    label = found.queue or "every queue"
    shape = "%H:%M" if found.span == "hour" else "%Y-%m-%d %H:%M"
    first = datetime.fromtimestamp(found.points[0].ts / 1000, tz=UTC).strftime(shape)
    console.print(f"{label}, {_WORDS[found.span]} (from {first} UTC)", markup=False)
    width = max(console.width - 20, 10)  # "  completed  12,345  " before the line: an
    # hour's 60 points fit 80 columns one a character
    for name, total, values in (
        ("completed", found.completed, [p.completed for p in found.points]),
        ("failed", found.failed, [p.failed for p in found.points]),
    ):
        console.print(f"  {name:<9} {total:>6,}  {sparkline(values, width)}", markup=False)
    p95 = "-" if found.p95_ms is None else f"{found.p95_ms:,.0f} ms"
    console.print(f"  p95 run time {p95}", markup=False)


@click.command()
@click.argument("queue", required=False)
@click.option(
    "--span",
    type=click.Choice(["hour", "day"]),
    default="hour",
    show_default=True,
    help="The last hour (a point a minute) or day (a point every 15 minutes).",
)
@json_option
@with_app
def history(app: Corral, queue: str | None, span: str, as_json: bool) -> None:
    """Jobs of QUEUE (default: every queue) completed and failed for good, and the p95
    run time, over the last hour or day."""

    async def go() -> None:
        if queue is not None:
            await known_queue(app, queue)
        found = await app.history(queue, cast(Span, span))
        if as_json:
            output.message(found.to_dict(), "", True)
        else:
            _show(found)

    run_closing(app, go)
