"""``corral pause|resume|clean|remove|promote|rerun``: the dashboard's queue and job actions
from a shell."""

from __future__ import annotations

import re

import click

from corral.app import Corral
from corral.cli import output
from corral.cli.commands import json_arg, json_option, record_action, run_closing, with_app
from corral.errors import InvalidTransition, JobNotFound, ValidationError

__all__ = ["COMMANDS", "known_queue", "parse_duration"]

#: Seconds per unit of a ``--older-than`` value.
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_CLEAN_BATCH = 10_000


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``30m``, ``1h``, ``1h30m``, ``2d`` or ``1w``."""
    value = text.strip().lower()
    try:
        return float(value) if value and value[-1].isdigit() else _units(value)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a duration: use seconds or units s, m, h, d, w (e.g. 90, 30m, 1h30m, 2d)",
            param_hint="--older-than",
        ) from None


def _units(value: str) -> float:
    parts = _PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(value)
    return sum(float(n) * UNITS[u] for n, u in parts)


async def known_queue(app: Corral, name: str) -> None:
    """Refuse a queue the store does not know (a typo would otherwise act on a new,
    empty queue and report success)."""
    app.queue(name)  # InvalidName first: a bad name is not merely unknown
    names = await app.queues()
    if name not in names:
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise ValidationError(f"no queue {name!r} (queues: {shown or 'none yet'})")


async def _pause(app: Corral, queue: str, as_json: bool) -> None:
    await known_queue(app, queue)
    await app.queue(queue).pause()
    await record_action(app, "queue.pause", queue)
    output.message({"queue": queue, "paused": True}, f"queue {queue}: paused", as_json)


async def _resume(app: Corral, queue: str, as_json: bool) -> None:
    await known_queue(app, queue)
    await app.queue(queue).resume()
    await record_action(app, "queue.resume", queue)
    output.message({"queue": queue, "paused": False}, f"queue {queue}: resumed", as_json)


async def _clean(
    app: Corral, queue: str, state: str, seconds: float, limit: int | None, as_json: bool
) -> None:
    await known_queue(app, queue)
    handle, total = app.queue(queue), 0
    while limit is None or total < limit:
        batch = _CLEAN_BATCH if limit is None else min(_CLEAN_BATCH, limit - total)
        removed = await handle.clean(state, older_than=seconds, limit=batch)
        total += removed
        if removed < batch:
            break
    await record_action(
        app, "queue.clean", queue, {"state": state, "older_than": seconds, "count": total}
    )
    output.count("cleaned", total, as_json)


async def _job_action(app: Corral, queue: str, job_id: str, action: str, as_json: bool) -> None:
    await known_queue(app, queue)
    job = await app.get_job(job_id, queue)
    if action == "remove":
        try:
            removed = await job.remove()
        except InvalidTransition:
            raise ValidationError(
                f"job {job_id} is active; cancel it first (corral cancel {job_id} -q {queue})"
            ) from None
        if not removed:  # gone since it was read
            raise JobNotFound(f"no job {job_id!r} in queue {queue!r}")
        await record_action(app, "job.remove", f"{queue}/{job_id}")
        output.message({"id": job_id, "removed": True}, f"job {job_id}: removed", as_json)
        return
    if not await job.promote():
        await job.refresh()
        raise ValidationError(
            f"job {job_id} is {job.state.value}; only delayed jobs can be promoted"
        )
    await record_action(app, "job.promote", f"{queue}/{job_id}")
    await job.refresh()
    output.message(
        {"id": job_id, "state": job.state.value}, f"job {job_id}: {job.state.value}", as_json
    )


_QUEUE = click.argument("queue")


@click.command()
@_QUEUE
@json_option
@with_app
def pause(app: Corral, queue: str, as_json: bool) -> None:
    """Stop workers from starting jobs of QUEUE (running jobs finish; enqueueing works)."""
    run_closing(app, lambda: _pause(app, queue, as_json))


@click.command()
@_QUEUE
@json_option
@with_app
def resume(app: Corral, queue: str, as_json: bool) -> None:
    """Let workers start jobs of a paused QUEUE again."""
    run_closing(app, lambda: _resume(app, queue, as_json))


@click.command()
@_QUEUE
@click.option(
    "--state",
    type=click.Choice(["completed", "failed", "cancelled"]),
    required=True,
    help="Which finished jobs to delete.",
)
@click.option(
    "--older-than",
    metavar="DURATION",
    required=True,
    help="Only jobs finished at least this long ago: 90 (seconds), 30m, 1h, 2d, 1w, 1h30m; "
    "0 for all.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    help="Delete at most N jobs (default: every match).",
)
@json_option
@with_app
def clean(
    app: Corral, queue: str, state: str, older_than: str, limit: int | None, as_json: bool
) -> None:
    """Delete finished jobs of QUEUE in one state.

    \b
    Example: corral clean emails --state completed --older-than 1d
    """
    seconds = parse_duration(older_than)
    run_closing(app, lambda: _clean(app, queue, state, seconds, limit, as_json))


@click.command()
@_QUEUE
@click.argument("job_id")
@json_option
@with_app
def remove(app: Corral, queue: str, job_id: str, as_json: bool) -> None:
    """Delete job JOB_ID of QUEUE (not while it runs: cancel it first)."""
    run_closing(app, lambda: _job_action(app, queue, job_id, "remove", as_json))


@click.command()
@_QUEUE
@click.argument("job_id")
@json_option
@with_app
def promote(app: Corral, queue: str, job_id: str, as_json: bool) -> None:
    """Run delayed job JOB_ID of QUEUE now (it goes to waiting)."""
    run_closing(app, lambda: _job_action(app, queue, job_id, "promote", as_json))


@click.command()
@_QUEUE
@click.argument("job_id")
@click.option(
    "--args",
    "args_json",
    metavar="JSON|@FILE|-",
    help="New positional arguments: a JSON array, @file.json, or - (default: the job's).",
)
@click.option(
    "--kwargs",
    "kwargs_json",
    metavar="JSON|@FILE|-",
    help="New keyword arguments: a JSON object, @file.json, or - (default: the job's).",
)
@json_option
@with_app
def rerun(
    app: Corral,
    queue: str,
    job_id: str,
    args_json: str | None,
    kwargs_json: str | None,
    as_json: bool,
) -> None:
    """Enqueue a new job like JOB_ID of QUEUE (task, priority, group, options), with its
    arguments or new ones; the new job records which one it reran."""
    if args_json == kwargs_json == "-":
        raise click.UsageError("only one of --args and --kwargs can read stdin (-)")
    args = None if args_json is None else json_arg("--args", args_json, list)
    kwargs = None if kwargs_json is None else json_arg("--kwargs", kwargs_json, dict)

    async def go() -> None:
        await known_queue(app, queue)
        job = await (await app.get_job(job_id, queue)).run_again(args, kwargs)
        detail = {"new": f"{job.queue}/{job.id}"}
        await record_action(app, "job.run_again", f"{queue}/{job_id}", detail)
        output.job(await job.refresh(), as_json)

    run_closing(app, go)


#: The commands this module adds to ``corral``.
COMMANDS = (pause, resume, clean, remove, promote, rerun)
