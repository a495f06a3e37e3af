"""``corral jobs QUEUE``: a queue's jobs in one state, a page at a time, optionally
searched (task, text, error, group), as a table that fits 80 columns or as JSON."""

from __future__ import annotations

import time
from typing import Any

import click
import orjson
from rich.table import Table

from corral.app import Corral
from corral.backends.base import JobState
from corral.cli import output
from corral.cli.commands import json_option, run_closing, with_app
from corral.cli.queue_ops import known_queue
from corral.job import Job
from corral.search import JobFilter, SearchPage

__all__ = ["jobs"]

STATES = [s.value for s in JobState]


def _when(job: Job, now: float) -> str:
    state = job.state
    if state is JobState.DELAYED:
        return output.relative(job.run_at, now)
    if state is JobState.ACTIVE:
        return output.relative(job.started_at, now)
    if state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED):
        return output.relative(job.finished_at, now)
    return output.relative(job.created_at, now)


def _compact(value: Any) -> str:
    return orjson.dumps(value).decode()


def _detail(job: Job) -> str:
    """The one thing worth seeing per state: error, progress, result or placement."""
    if job.corrupt:
        return f"unreadable: {', '.join(job.corrupt)}"
    error = job.error
    if job.state in (JobState.FAILED, JobState.CANCELLED) and error:
        return f"{error.get('type')}: {error.get('message')}"
    if job.state is JobState.ACTIVE:
        return "" if job.progress is None else f"progress {_compact(job.progress)}"
    if job.state is JobState.COMPLETED:
        return _compact(job.return_value)
    parts = [f"priority {job.priority}" if job.priority else "", job.group or ""]
    if error:  # waiting or delayed again after a failed attempt
        parts.append(f"last error {error.get('type')}")
    return "  ".join(p for p in parts if p)


def _table(found: list[Job]) -> Table:
    """The jobs as rows that fit the terminal: ids whole (to copy them), the task and
    the detail cut with an ellipsis when they must be."""
    now = time.time()
    rows = [(j.id, j.name, _when(j, now), str(j.attempts), _detail(j)) for j in found]
    headers = ["id", "task", "when", "try", "detail"]
    return output.fit_table(headers, rows, shrink=(1, 4), right=(2, 3))


def _show(
    queue: str,
    state: str,
    found: list[Job],
    cursor: str | None,
    search: SearchPage | None,
    counts: dict[str, int] | None = None,
) -> None:
    console = output.console()
    if found:
        console.print(_table(found))
    elif search is None:
        others = [f"{n:,} {s}" for s, n in (counts or {}).items() if s in STATES and n]
        hint = f" ({', '.join(others)}: --state picks)" if others else ""
        console.print(f"no {state} jobs in queue {queue}{hint}", markup=False)
    else:
        console.print(f"no matches among the {search.scanned:,} {state} jobs scanned")
    if search is not None and not search.exhausted:
        console.print(
            f"scanned {search.scanned:,} jobs (at most {search.bound:,} per call); "
            f"search on with --cursor {cursor}",
            soft_wrap=True,
        )
    elif cursor is not None:
        console.print(f"next page: --cursor {cursor} (same options)", soft_wrap=True)


@click.command()
@click.argument("queue")
@click.option(
    "--state",
    type=click.Choice(STATES),
    default="waiting",
    show_default=True,
    help="Jobs in this state.",
)
@click.option("--task", metavar="NAME", help="Task name, or a pattern with * and ? (emails.*).")
@click.option("--search", "text", metavar="TEXT", help="Text in the arguments or id (any case).")
@click.option("--error", metavar="TEXT", help="Text in the last error's type or message.")
@click.option("--group", metavar="GROUP", help="Jobs of this group (tenant).")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Jobs per page."
)
@click.option(
    "--scan",
    type=click.IntRange(1, 100_000),
    default=5000,
    show_default=True,
    help="With a filter: jobs read at most per call.",
)
@click.option("--cursor", metavar="CURSOR", help="Where the previous page said to go on.")
@json_option
@with_app
def jobs(
    app: Corral,
    queue: str,
    state: str,
    task: str | None,
    text: str | None,
    error: str | None,
    group: str | None,
    limit: int,
    scan: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List QUEUE's jobs in one state, newest first when finished, in run order when
    waiting; --task, --search, --error and --group filter them (a bounded scan).

    \b
    Examples:
      corral jobs emails --state failed --error timeout
      corral jobs imports --state completed --task 'imports.*' --json
    """

    async def go() -> None:
        await known_queue(app, queue)
        handle = app.queue(queue)
        search: SearchPage | None = None
        if any(v is not None for v in (task, text, error, group)):
            flt = JobFilter(state, task=task, text=text, error=error, group=group)
            search = await handle.search(flt, cursor=cursor, limit=limit, scan=scan)
            found, nxt = search.jobs, search.next_cursor
        else:
            page = await handle.page(state, cursor=cursor, limit=limit)
            found, nxt = page.jobs, page.next_cursor
        if as_json:
            data: dict[str, Any] = {"jobs": [j.to_dict() for j in found], "next_cursor": nxt}
            if search is not None:
                data |= {"scanned": search.scanned, "bound": search.bound}
                data["exhausted"] = search.exhausted
            output.message(data, "", True)
            return
        # An empty first page says which states do hold jobs (one counts read).
        counts = await handle.counts() if not found and cursor is None else None
        _show(queue, state, found, nxt, search, counts)

    run_closing(app, go)
