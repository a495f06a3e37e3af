"""Human (rich) and machine (JSON) output of the CLI."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import click
import orjson
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from corral.audit import AuditEntry
from corral.backends.base import JobState, WorkerInfo
from corral.blockers import Blocker
from corral.job import Job

__all__ = [
    "STATE_STYLE",
    "audit",
    "console",
    "count",
    "fit_table",
    "job",
    "message",
    "queues",
    "schedules",
    "warn",
    "workers",
]


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


def fit_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    shrink: Collection[int] = (),
    right: Collection[int] = (),
) -> Table:
    """A borderless table for stdout. On a terminal too narrow for it (80 columns, say)
    the ``shrink`` columns are cut with an ellipsis, widest first, so every row stays
    on one line and the other columns (ids, names to copy, numbers) stay whole. Piped,
    the console is unbounded (see :func:`_out`), so nothing is cut."""
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold underline")
    natural = [
        max([cell_len(header), *(cell_len(row[i]) for row in rows)])
        for i, header in enumerate(headers)
    ]
    widths: list[int | None] = [None] * len(headers)
    room = (
        _out().width
        - 2 * (len(headers) - 1)
        - sum(n for i, n in enumerate(natural) if i not in shrink)
    )
    if shrink and sum(natural[i] for i in shrink) > room:
        floor = {i: min(natural[i], max(cell_len(headers[i]), 4)) for i in shrink}

        def used(cap: int) -> int:
            return sum(min(natural[i], max(cap, floor[i])) for i in shrink)

        low, high = 0, max(natural)  # the widest cap that fits (floors kept regardless)
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if used(mid) <= room else (low, mid - 1)
        for i in shrink:
            widths[i] = min(natural[i], max(low, floor[i]))
    for i, header in enumerate(headers):
        table.add_column(
            header,
            width=widths[i],
            no_wrap=True,
            overflow="ellipsis",
            justify="right" if i in right else "left",
        )
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # text, never rich markup
    return table


STATE_STYLE = {
    "completed": "green",
    "failed": "red",
    "active": "cyan",
    "waiting": "yellow",
    "delayed": "magenta",
    "cancelled": "dim",
    "blocked": "yellow",
    "running": "cyan",
}
_STATE_STYLE = STATE_STYLE


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


def job(
    handle: Job, as_json: bool, *, full: bool = False, waits: list[Blocker] | None = None
) -> None:
    """A job; ``waits``: why it has not started (``corral job`` reads them for waiting
    and delayed jobs; with ``--json`` they are its ``blockers``)."""
    data = handle.to_dict()
    if as_json:
        if waits is not None:
            data["blockers"] = [_blocker(b) for b in waits]
        _json(data)
        return
    out = _out()
    style = _STATE_STYLE.get(data["state"], "")
    # Stored text (errors, progress, results, logs) is escaped: "[/x]" in an error
    # message is not rich markup (it would raise, "[foo]" would vanish).
    out.print(
        f"[bold]{data['id']}[/]  {data['name']}  queue={data['queue']}  [{style}]{data['state']}[/]"
    )
    out.print(
        f"  attempts {data['attempts']}  priority {data['priority']}  created {data['created_at'] or '-'}"
    )
    if data["started_at"] or data["finished_at"]:
        out.print(f"  started {data['started_at'] or '-'}  finished {data['finished_at'] or '-'}")
    if data["run_at"] and data["state"] == JobState.DELAYED.value:
        out.print(f"  runs at {data['run_at']}")
    for blocker in waits or ():
        out.print(f"  [yellow]not started: {escape(blocker.message)}[/]")
    for field, raw in data["corrupt"].items():
        out.print(f"  {field}: not readable as stored: {raw}", style="red", markup=False)
    if data["progress"] is not None:
        out.print(f"  progress {orjson.dumps(data['progress']).decode()}", markup=False)
    if data["state"] == JobState.COMPLETED.value:
        out.print(f"  result {orjson.dumps(data['result']).decode()}", markup=False)
    _errors_and_logs(out, data, full)


def _errors_and_logs(out: Console, data: dict[str, Any], full: bool) -> None:
    """The last error (``full``: every attempt's, the last traceback and the logs)."""
    for error in data["errors"] if full else data["errors"][-1:]:
        text = f"{error.get('type')}: {error.get('message')}"
        out.print(f"  [red]error (attempt {error.get('attempt')}): {escape(text)}[/]")
    if not full:
        return
    if data["errors"] and data["errors"][-1].get("traceback"):
        out.print(data["errors"][-1]["traceback"], markup=False)
    for line in data["logs"]:
        out.print(f"  log: {line}", markup=False)


def _blocker(b: Blocker) -> dict[str, Any]:
    return {"kind": b.kind, "message": b.message, "until": b.until and b.until.isoformat()}


def queues(rows: dict[str, dict[str, int]], as_json: bool) -> None:
    if as_json:
        _json(rows)
        return
    if not rows:
        _out().print("no queues yet")
        return
    headers = ["queue", *(s.value for s in JobState), "paused"]
    body = [
        [
            name,
            *(str(counts.get(s.value, 0)) for s in JobState),
            "yes" if counts.get("paused") else "",
        ]
        for name, counts in rows.items()
    ]
    table = fit_table(headers, body, right=range(1, len(headers) - 1))
    _out().print(table)


def workers(items: list[WorkerInfo], as_json: bool) -> None:
    if as_json:
        _json([{**w.__dict__} if hasattr(w, "__dict__") else _worker_dict(w) for w in items])
        return
    if not items:
        _out().print("no live workers")
        return
    headers = [
        "worker", "host", "pid", "queues", "slots", "active", "children", "done", "failed", "seen",
    ]  # fmt: skip
    body = [
        [
            w.id,
            w.host,
            str(w.pid),
            ",".join(w.queues),
            str(w.concurrency),
            str(w.active),
            str(w.children),
            str(w.processed),
            str(w.failed),
            datetime.fromtimestamp(w.last_seen / 1000, tz=UTC).strftime("%H:%M:%S"),
        ]
        for w in items
    ]
    table = fit_table(headers, body, shrink=(0, 1, 3), right=(2, 4, 5, 6, 7, 8))
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
    now = datetime.now(UTC).timestamp()
    body = []
    for s in items:
        when = f"{s['cron']} {s['tz']}" if s["cron"] else f"every {s['every']:g}s"
        body.append(
            [
                s["name"],
                s["task"],
                s["queue"],
                when,
                relative(s["next_run_at"], now),
                relative(s["last_run_at"], now),
                "yes" if s["paused"] else "",
            ]
        )
    headers = ["schedule", "task", "queue", "when", "next", "last", "paused"]
    table = fit_table(headers, body, shrink=(1, 2, 3), right=(4, 5))
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


def relative(moment: datetime | str | None, now: float) -> str:
    """``42s``, ``5m``, ``3h``, ``12d`` ago; ``in 5m`` for a time still to come; ``-``
    for none. ``moment`` may be ISO 8601 text."""
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    delta = moment.timestamp() - now
    seconds = abs(delta)
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)}{unit}"
            break
    else:
        text = f"{int(seconds)}s"
    return f"in {text}" if delta > 1 else text
