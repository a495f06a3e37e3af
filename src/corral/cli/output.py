"""Human (rich) and machine (JSON) output of the CLI."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from corral.audit import AuditEntry
from corral.backends.base import JobState, WorkerInfo
from corral.job import Job

__all__ = ["audit", "console", "count", "job", "message", "queues", "schedules", "warn", "workers"]


@functools.cache
def _out() -> Console:
    """The console for stdout. On a terminal rich fits tables and lines to its width;
    piped (to a file, ``less``, ``grep``) nothing is cut or wrapped: there is no
    width to fit."""
    console = Console(highlight=False)
    if console.is_terminal:
        return console
    return Console(highlight=False, width=100_000, soft_wrap=True)


def console() -> Console:
    """The console for stdout (see :func:`_out`), for commands that print their own
    tables."""
    return _out()


_STATE_STYLE = {
    "completed": "green",
    "failed": "red",
    "active": "cyan",
    "waiting": "yellow",
    "delayed": "magenta",
    "cancelled": "dim",
}


def _json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def warn(text: str) -> None:
    """A warning on stderr (stdout stays clean for ``--json``)."""
    click.secho(f"warning: {text}", fg="yellow", err=True)


def message(data: Any, text: str, as_json: bool) -> None:
    if as_json:
        _json(data)
    else:
        _out().print(text)


def count(verb: str, n: int, as_json: bool) -> None:
    message({verb: n}, f"{verb} {n} job{'s' if n != 1 else ''}", as_json)


def job(handle: Job, as_json: bool, *, full: bool = False) -> None:
    data = handle.to_dict()
    if as_json:
        _json(data)
        return
    style = _STATE_STYLE.get(data["state"], "")
    _out().print(
        f"[bold]{data['id']}[/]  {data['name']}  queue={data['queue']}  [{style}]{data['state']}[/]"
    )
    _out().print(
        f"  attempts {data['attempts']}  priority {data['priority']}  created {data['created_at'] or '-'}"
    )
    if data["started_at"] or data["finished_at"]:
        _out().print(
            f"  started {data['started_at'] or '-'}  finished {data['finished_at'] or '-'}"
        )
    if data["run_at"] and data["state"] == JobState.DELAYED.value:
        _out().print(f"  runs at {data['run_at']}")
    for field, raw in data["corrupt"].items():
        _out().print(f"  {field}: not readable as stored: {raw}", style="red", markup=False)
    if data["progress"] is not None:
        _out().print(f"  progress {orjson.dumps(data['progress']).decode()}")
    if data["state"] == JobState.COMPLETED.value:
        _out().print(f"  result {orjson.dumps(data['result']).decode()}")
    for error in data["errors"] if full else data["errors"][-1:]:
        _out().print(
            f"  [red]error (attempt {error.get('attempt')}): {error.get('type')}: {error.get('message')}[/]"
        )
    if full and data["errors"] and data["errors"][-1].get("traceback"):
        _out().print(data["errors"][-1]["traceback"], markup=False)
    if full:
        for line in data["logs"]:
            _out().print(f"  log: {line}", markup=False)


def queues(rows: dict[str, dict[str, int]], as_json: bool) -> None:
    if as_json:
        _json(rows)
        return
    if not rows:
        _out().print("no queues yet")
        return
    table = Table("queue", *(s.value for s in JobState), "paused")
    for name, counts in rows.items():
        table.add_row(
            name,
            *(str(counts.get(s.value, 0)) for s in JobState),
            "yes" if counts.get("paused") else "",
        )
    _out().print(table)


def workers(items: list[WorkerInfo], as_json: bool) -> None:
    if as_json:
        _json([{**w.__dict__} if hasattr(w, "__dict__") else _worker_dict(w) for w in items])
        return
    if not items:
        _out().print("no live workers")
        return
    table = Table(
        "worker",
        "host",
        "pid",
        "queues",
        "concurrency",
        "active",
        "processed",
        "failed",
        "last seen",
    )
    for w in items:
        seen = datetime.fromtimestamp(w.last_seen / 1000, tz=UTC).strftime("%H:%M:%S")
        table.add_row(
            w.id,
            w.host,
            str(w.pid),
            ",".join(w.queues),
            str(w.concurrency),
            str(w.active),
            str(w.processed),
            str(w.failed),
            seen,
        )
    _out().print(table)


def _worker_dict(w: WorkerInfo) -> dict[str, Any]:
    return {name: getattr(w, name) for name in w.__dataclass_fields__}


def schedules(items: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        _json(items)
        return
    if not items:
        _out().print("no schedules")
        return
    table = Table("schedule", "task", "queue", "when", "next run", "last run", "paused")
    for s in items:
        when = s["cron"] + f" ({s['tz']})" if s["cron"] else f"every {s['every']:g}s"
        table.add_row(
            s["name"],
            s["task"],
            s["queue"],
            when,
            s["next_run_at"] or "-",
            s["last_run_at"] or "-",
            "yes" if s["paused"] else "",
        )
    _out().print(table)


def audit(entries: list[AuditEntry], as_json: bool, *, limit: int) -> None:
    if as_json:
        _json([e.to_dict() for e in entries])
        return
    if not entries:
        _out().print("no audit entries")
        return
    # On an 80-column terminal target and detail fold (a job id is shown whole; --json
    # has long details whole); time, key and action stay on one line. Cells are Text: a
    # key name or detail with [brackets] is not rich markup.
    table = Table("when (UTC)", "key", "action", "target", "detail")
    for e in entries:
        detail = "" if e.detail is None else orjson.dumps(e.detail).decode()
        detail = detail if len(detail) <= 80 else detail[:79] + "…"
        when = e.at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(*(Text(cell) for cell in (when, e.key, e.action, e.target, detail)))
    for column in table.columns[:3]:
        column.no_wrap = True
    table.columns[3].overflow = table.columns[4].overflow = "fold"
    _out().print(table)
    if len(entries) == limit:
        _out().print(f"older: corral audit --before {entries[-1].id}", markup=False)
