"""``corral schedules [run|pause|resume NAME]``: list schedules, or steer one."""

from __future__ import annotations

import click

from corral.app import Corral
from corral.cli import output
from corral.cli.commands import (
    add_shared_options,
    app_of,
    json_option,
    record_action,
    run_closing,
    with_app,
)
from corral.errors import JobNotFound, ValidationError
from corral.schedules import Schedule

__all__ = ["schedules"]


async def _named(app: Corral, name: str) -> Schedule:
    """The schedule called ``name``; an unknown name is bad input (exit 2), listing the
    names there are."""
    try:
        return await app.schedules.get(name)
    except JobNotFound:
        names = [s.name for s in await app.schedules.list()]
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise ValidationError(
            f"no schedule named {name!r} (schedules: {shown or 'none yet'})"
        ) from None


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def schedules(ctx: click.Context, as_json: bool) -> None:
    """Schedules of every queue with their next (and last) fire times; or run, pause
    or resume one (corral schedules run NAME)."""
    if ctx.invoked_subcommand is not None:
        return
    app = app_of(ctx)

    async def show() -> None:
        output.schedules([s.to_dict() for s in await app.schedules.list()], as_json)

    run_closing(app, show)


@schedules.command("run")
@click.argument("name")
@json_option
@with_app
def run_now(app: Corral, name: str, as_json: bool) -> None:
    """Enqueue schedule NAME's job now (its next fire time stays as it is)."""

    async def go() -> None:
        await _named(app, name)
        job = await app.schedules.run_now(name)
        await record_action(app, "schedule.run", name, {"job": f"{job.queue}/{job.id}"})
        output.message(
            job.to_dict(), f"schedule {name}: enqueued job {job.id} on queue {job.queue}", as_json
        )

    run_closing(app, go)


def _describe(schedule: Schedule) -> str:
    if schedule.spec.paused:
        return f"schedule {schedule.name}: paused (it fires again once resumed)"
    when = schedule.next_run_at.isoformat() if schedule.next_run_at else "-"
    return f"schedule {schedule.name}: resumed; next run {when}"


@schedules.command()
@click.argument("name")
@json_option
@with_app
def pause(app: Corral, name: str, as_json: bool) -> None:
    """Stop schedule NAME from firing (its ticks are skipped until resumed)."""

    async def go() -> None:
        await _named(app, name)
        schedule = await app.schedules.pause(name)
        await record_action(app, "schedule.pause", name)
        output.message(schedule.to_dict(), _describe(schedule), as_json)

    run_closing(app, go)


@schedules.command()
@click.argument("name")
@json_option
@with_app
def resume(app: Corral, name: str, as_json: bool) -> None:
    """Let paused schedule NAME fire again, from its next tick after now."""

    async def go() -> None:
        await _named(app, name)
        schedule = await app.schedules.resume(name)
        await record_action(app, "schedule.resume", name)
        output.message(schedule.to_dict(), _describe(schedule), as_json)

    run_closing(app, go)


for _command in schedules.commands.values():
    add_shared_options(_command)
