"""``corral limits``: show or set a queue's flow control (caps and rates)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import click

from corral.app import Corral
from corral.backends.base import QueueLimits
from corral.cli import output
from corral.cli.commands import json_option, run, with_app
from corral.queue import KEEP, Keep

T = TypeVar("T")

__all__ = ["limits"]


def _given(value: str | None, parse: Callable[[str], T]) -> T | Keep | None:
    """An option's value: not given keeps the limit, ``none`` removes it."""
    if value is None:
        return KEEP
    if value.strip().lower() == "none":
        return None
    return parse(value)


def _count(option: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            return int(value)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not a whole number (or 'none' to remove the limit)",
                param_hint=option,
            ) from None

    return parse


def _rate(option: str) -> Callable[[str], tuple[int, float]]:
    return lambda value: _parse_rate(option, value)


def _parse_rate(option: str, value: str) -> tuple[int, float]:
    jobs, sep, seconds = value.partition("/")
    try:
        if not sep:
            raise ValueError
        return int(jobs), float(seconds)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not JOBS/SECONDS (e.g. 100/60 for 100 a minute) or 'none'",
            param_hint=option,
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
@click.option(
    "--max-active", metavar="N|none", help="Jobs of the queue running at once, all workers."
)
@click.option("--rate", metavar="JOBS/SECONDS|none", help="Starts per window, e.g. 100/60.")
@click.option(
    "--group-max-active", metavar="N|none", help="The same cap, for each group on its own."
)
@click.option("--group-rate", metavar="JOBS/SECONDS|none", help="The same rate, per group.")
@click.option("--clear", is_flag=True, help="Remove every limit of the queue.")
@json_option
@with_app
def limits(
    app: Corral,
    queue: str,
    max_active: str | None,
    rate: str | None,
    group_max_active: str | None,
    group_rate: str | None,
    clear: bool,
    as_json: bool,
) -> None:
    """Show QUEUE's limits, or change the ones given (the others are kept; 'none'
    removes one, --clear all)."""
    changing = any(v is not None for v in (max_active, rate, group_max_active, group_rate))
    if clear and changing:
        raise click.UsageError("give --clear or new limits, not both")
    cap = _given(max_active, _count("--max-active"))
    whole = _given(rate, _rate("--rate"))
    group_cap = _given(group_max_active, _count("--group-max-active"))
    per_group = _given(group_rate, _rate("--group-rate"))

    async def go() -> None:
        try:
            handle = app.queue(queue)
            if clear:
                current = await handle.clear_limits()
            elif changing:
                current = await handle.set_limits(
                    max_active=cap, rate=whole, group_max_active=group_cap, group_rate=per_group
                )
            else:
                current = await handle.limits()
            data = {"queue": queue, **dataclasses.asdict(current)}
            output.message(data, _describe(queue, current), as_json)
        finally:
            await app.close()

    run(go)
