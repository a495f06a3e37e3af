"""``corral bulk QUEUE ACTION``: retry, cancel, remove or promote the jobs a filter
matches (or a list of ids), as the dashboard's bulk actions do."""

from __future__ import annotations

import sys
from typing import cast

import click

from corral.app import Corral
from corral.backends.base import JobState
from corral.cli import output
from corral.cli.commands import json_option, record_action, run_closing, with_app
from corral.cli.queue_ops import known_queue
from corral.search import BULK_ACTIONS, BulkAction, JobFilter

__all__ = ["bulk"]

STATES = [s.value for s in JobState]


@click.command()
@click.argument("queue")
@click.argument("action", type=click.Choice(list(BULK_ACTIONS)))
@click.option("--state", type=click.Choice(STATES), help="Jobs in this state (with a filter).")
@click.option("--task", metavar="NAME", help="Task name, or a pattern with * and ? (emails.*).")
@click.option("--search", "text", metavar="TEXT", help="Text in the arguments or id (any case).")
@click.option("--error", metavar="TEXT", help="Text in the last error's type or message.")
@click.option("--group", metavar="GROUP", help="Jobs of this group (tenant).")
@click.option("--ids", metavar="ID,ID,...", help="These jobs instead of a filter.")
@json_option
@with_app
def bulk(
    app: Corral,
    queue: str,
    action: str,
    state: str | None,
    task: str | None,
    text: str | None,
    error: str | None,
    group: str | None,
    ids: str | None,
    as_json: bool,
) -> None:
    """ACTION (retry, cancel, remove, promote) every job of QUEUE in --state that the
    filters match, or the jobs --ids names. Jobs that have moved on to a state the
    action does not apply to are skipped and counted.

    \b
    Examples:
      corral bulk emails retry --state failed --error timeout
      corral bulk imports remove --state failed --task 'imports.*'
      corral bulk emails cancel --ids 01J9A,01J9B
    """
    filtering = any(v is not None for v in (state, task, text, error, group))
    if ids is not None and filtering:
        raise click.UsageError("give --ids or a filter (--state and more), not both")
    if ids is None and state is None:
        raise click.UsageError("give --state (and any filter), or --ids")
    wanted = None if ids is None else [i.strip() for i in ids.split(",") if i.strip()]
    if wanted == []:
        raise click.BadParameter("no job id in it", param_hint="--ids")
    shown = sys.stderr.isatty()  # progress on a terminal only; stdout stays the answer

    def progress(done: int, matched: int) -> None:
        if shown:
            click.echo(
                f"\r{action}: {done:,} gone through, {matched:,} matched", err=True, nl=False
            )

    async def go() -> None:
        await known_queue(app, queue)
        flt = None
        if wanted is None:
            assert state is not None
            flt = JobFilter(state, task=task, text=text, error=error, group=group)
        what = cast(BulkAction, action)
        result = await app.queue(queue).bulk(what, ids=wanted, filter=flt, progress=progress)
        if shown:
            click.echo(err=True)
        counted = {"matched": result.matched, "changed": result.changed}
        by = "ids" if wanted is not None else "filter"
        await record_action(app, "queue.bulk", queue, {"action": action, "by": by, **counted})
        output.message(
            {"matched": result.matched, "changed": result.changed, "skipped": result.skipped},
            f"{action}: {result.matched:,} matched, {result.changed:,} changed, "
            f"{result.skipped:,} skipped",
            as_json,
        )

    run_closing(app, go)
