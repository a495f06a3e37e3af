"""``corral limits``: show or set a queue's flow control (caps and rates)."""

from __future__ import annotations

import dataclasses

import click

from corral.app import Corral
from corral.backends.base import QueueLimits
from corral.cli import output
from corral.cli.commands import json_option, run, with_app

__all__ = ["limits"]


def _rate(option: str, value: str | None) -> tuple[int, float] | None:
    if value is None:
        return None
    jobs, sep, seconds = value.partition("/")
    try:
        if not sep:
            raise ValueError
        return int(jobs), float(seconds)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not JOBS/SECONDS (e.g. 100/60 for 100 a minute)", param_hint=option
        ) from None


def _describe(queue: str, limits: QueueLimits) -> str:
    def rate(n: int | None, window: float | None) -> str:
        return "none" if n is None else f"{n} per {window:g} s"

    return "\n".join(
        [
            f"queue {queue}",
            f"  max active:        {limits.max_active or 'none'}",
            f"  rate:              {rate(limits.rate_max, limits.rate_window)}",
            f"  max active/group:  {limits.group_max_active or 'none'}",
            f"  rate/group:        {rate(limits.group_rate_max, limits.group_rate_window)}",
        ]
    )


@click.command()
@click.argument("queue")
@click.option("--max-active", type=int, help="Jobs of the queue running at once, all workers.")
@click.option("--rate", metavar="JOBS/SECONDS", help="Starts per window, e.g. 100/60.")
@click.option("--group-max-active", type=int, help="The same cap, for each group on its own.")
@click.option("--group-rate", metavar="JOBS/SECONDS", help="The same rate, per group.")
@click.option("--clear", is_flag=True, help="Remove every limit of the queue.")
@json_option
@with_app
def limits(
    app: Corral,
    queue: str,
    max_active: int | None,
    rate: str | None,
    group_max_active: int | None,
    group_rate: str | None,
    clear: bool,
    as_json: bool,
) -> None:
    """Show QUEUE's limits, or set them (the options given replace all earlier limits)."""
    changing = any(v is not None for v in (max_active, rate, group_max_active, group_rate))
    if clear and changing:
        raise click.UsageError("give --clear or new limits, not both")
    whole, per_group = _rate("--rate", rate), _rate("--group-rate", group_rate)

    async def go() -> None:
        try:
            handle = app.queue(queue)
            if clear or changing:
                current = await handle.set_limits(
                    max_active=max_active,
                    rate=whole,
                    group_max_active=group_max_active,
                    group_rate=per_group,
                )
            else:
                current = await handle.limits()
            data = {"queue": queue, **dataclasses.asdict(current)}
            output.message(data, _describe(queue, current), as_json)
        finally:
            await app.close()

    run(go)
