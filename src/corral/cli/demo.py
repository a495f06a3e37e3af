"""``corral demo``: enqueue sample jobs, run them in an in-process worker with a live
display, then summarise what happened (retries, a dead-lettered job, timings)."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import shlex
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from corral.app import Corral
from corral.backends.base import JobState
from corral.cli.commands import json_option
from corral.demo_tasks import BROKEN_IMPORT, FLAKY_WEBHOOK, QUEUE, SEND_REPORT, SYNC_ORDERS
from corral.demo_tasks import register_demo_tasks as register
from corral.errors import ConfigurationError, CorralError
from corral.job import Job
from corral.queue import Queue
from corral.settings import describe_backend, mask_url
from corral.task import Call, Task
from corral.worker import Worker

__all__ = ["demo"]

FINISHED = ("completed", "failed", "cancelled")
PENDING = ("waiting", "delayed", "active")
TASK_ORDER = (SYNC_ORDERS, FLAKY_WEBHOOK, BROKEN_IMPORT, SEND_REPORT)
STORES = ("acme-coffee", "north-deli", "harbor-books", "city-bikes", "blue-bakery", "oak-market")


def _plan(tasks: dict[str, Task[Any, Any]], n: int, rng: random.Random) -> list[Call]:
    """Mostly order syncs, plus flaky webhooks, a broken import or two and a delayed report."""
    flaky = 0 if n < 2 else max(1, n // 12)
    broken = 0 if n < 3 else 1 if n < 30 else 2
    report = 1 if n >= 4 else 0
    hook, imports, sync = tasks[FLAKY_WEBHOOK], tasks[BROKEN_IMPORT], tasks[SYNC_ORDERS]
    calls = [hook.call(f"https://hooks.example.com/orders/{i}") for i in range(flaky)]
    calls += [imports.call(f"imports/customers-{i + 1}.csv") for i in range(broken)]
    syncs = n - flaky - broken - report
    calls += [sync.call(STORES[i % len(STORES)], rng.randint(5, 40)) for i in range(syncs)]
    rng.shuffle(calls)
    if report:
        calls.append(tasks[SEND_REPORT].options(delay=1).call("ops@example.com"))
    return calls


async def _reset(queue: Queue) -> None:
    """Start clean: no unfinished leftovers of an interrupted run, queue not paused.
    Finished jobs of earlier runs stay (the last run printed their ids), until
    retention removes them."""
    await queue.resume()
    await queue.drain(delayed=True)


class _Events(logging.Handler):
    """Shows the worker's retries and failures above the live display (a few of them)."""

    LIMIT = 12

    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self.console = console
        self.shown = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.shown += 1
        if self.shown > self.LIMIT:
            if self.shown == self.LIMIT + 1:
                self.console.print("[dim]... more retries and failures: see the summary[/]")
            return
        text = escape(record.getMessage())
        args = record.args if isinstance(record.args, tuple) else ()
        job_line = record.name == "corral.job" and len(args) == 7
        found = (
            re.fullmatch(r" error=(.+?)(?: retry_in=([\d.]+)s)?", str(args[-1]))
            if job_line
            else None
        )
        if found:  # a job's outcome: verb, task, id, queue, attempt, ms, " error=... retry_in=..."
            again = f" [dim](again in {float(found[2]):g}s)[/]" if found[2] else ""
            text = f"{args[0]:<8} {args[1]} #{args[4]}: {escape(found[1][1:-1])}{again}"
        style = "red" if record.levelno >= logging.ERROR else "yellow"
        self.console.print(f"[{style}]{text}[/]", overflow="ellipsis", no_wrap=True)


def _status(counts: dict[str, int]) -> str:
    styles = {"active": "cyan", "delayed": "magenta", "completed": "green", "failed": "red"}
    words = {"active": "running", "completed": "ok"}
    shown = [s for s in styles if counts.get(s) or s in ("completed", "failed")]
    return " ".join(f"[{styles[s]}]{counts.get(s, 0)} {words.get(s, s)}[/]" for s in shown)


def _show_active(progress: Progress, rows: dict[str, TaskID], active: list[Job]) -> None:
    """One line per running order sync, with its page progress."""
    seen: set[str] = set()
    for job in active:
        done = job.progress
        if job.name != SYNC_ORDERS or not isinstance(done, dict):
            continue
        seen.add(job.id)
        if job.id not in rows:
            label = f"  [dim]{escape(str(job.args[0]))}[/]"
            rows[job.id] = progress.add_task(label, total=done["pages"], unit="pages", status="")
        progress.update(rows[job.id], completed=done["page"])
    for job_id in set(rows) - seen:
        progress.remove_task(rows.pop(job_id))


COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(bar_width=20),
    MofNCompleteColumn(),
    TextColumn("{task.fields[unit]}"),
    TextColumn("{task.fields[status]}"),
)


async def _watch(queue: Queue, total: int, progress: Progress, runner: asyncio.Task[None]) -> None:
    """Poll counts (and running syncs) ~10x a second until no job is left to run."""
    overall = progress.add_task("[bold]demo jobs[/]", total=total, unit="done", status="")
    rows: dict[str, TaskID] = {}
    while True:
        if runner.done():
            runner.result()
            raise CorralError("the demo worker stopped unexpectedly")
        counts = await queue.counts()
        finished = sum(counts.get(state, 0) for state in FINISHED)
        progress.update(overall, completed=min(finished, total), status=_status(counts))
        if progress.console.is_interactive:
            _show_active(progress, rows, await queue.jobs(JobState.ACTIVE, limit=100))
        if not any(counts.get(state, 0) for state in PENDING):
            break
        await asyncio.sleep(0.1)
    for row in rows.values():
        progress.remove_task(row)


async def _tally(queue: Queue, jobs: list[Job]) -> tuple[dict[str, dict[str, int]], str | None]:
    """Per task: jobs, completed, failed, cancelled, retries; and one failed job's id."""
    ids = {job.id for job in jobs}
    enqueued = Counter(job.name for job in jobs)
    per_task = {
        name: {"jobs": enqueued[name], **dict.fromkeys(FINISHED, 0), "retries": 0}
        for name in TASK_ORDER
        if enqueued[name]
    }
    failed_id: str | None = None
    for state in FINISHED:
        offset = 0
        while page := await queue.jobs(state, offset=offset, limit=1000):
            offset += len(page)
            for job in (j for j in page if j.id in ids):
                row = per_task[job.name]
                row[state] += 1
                if state != "cancelled":
                    row["retries"] += max(job.attempts - 1, 0)
                if state == "failed" and (failed_id is None or job.name == BROKEN_IMPORT):
                    failed_id = job.id
    return per_task, failed_id


async def _run(app: Corral, n: int, console: Console) -> dict[str, Any]:
    tasks = register(app)
    queue = app.queue(QUEUE)
    events = _Events(console)
    try:
        await _reset(queue)
        started = time.monotonic()
        jobs = await app.enqueue_many(_plan(tasks, n, random.Random(7)))
        worker = Worker(app, [QUEUE], concurrency=10, lease=10, heartbeat=1, grace=5)
        runner = asyncio.create_task(worker.run(), name="corral-demo-worker")
        logging.getLogger("corral").addHandler(events)
        try:
            with Progress(*COLUMNS, console=console) as progress:
                await _watch(queue, len(jobs), progress, runner)
            seconds = time.monotonic() - started
        finally:
            worker.stop()
            await runner
            logging.getLogger("corral").removeHandler(events)
        per_task, failed_id = await _tally(queue, jobs)
    finally:
        await app.close()
    keys = ("jobs", *FINISHED, "retries")
    return {
        **{key: sum(row[key] for row in per_task.values()) for key in keys},
        "seconds": round(seconds, 3),
        "jobs_per_second": round(len(jobs) / seconds, 1),
        "tasks": per_task,
        "failed_job": failed_id,
        "first_job": jobs[0].id,
        "url": mask_url(app.url),
    }


def _print_summary(console: Console, summary: dict[str, Any], given_url: str | None) -> None:
    """The summary table, where the data lives and what to run next (``given_url``: the
    ``--url`` the user gave, if any)."""
    keys = ["jobs", "completed", "failed", *(["cancelled"] * bool(summary["cancelled"])), "retries"]
    table = Table("task", *keys, title="Demo summary", title_justify="left")
    for column in table.columns[1:]:
        column.justify = "right"
    for name, row in summary["tasks"].items():
        table.add_row(name, *(str(row[k]) for k in keys))
    table.add_section()
    table.add_row("[bold]total[/]", *(f"[bold]{summary[k]}[/]" for k in keys))
    console.print(table)
    console.print(
        f"{summary['jobs']} jobs in {summary['seconds']:.2f} s ({summary['jobs_per_second']} jobs/s)"
    )
    where = escape(describe_backend(summary["url"]))
    console.print(f"\nData lives in: [bold]{where}[/]", soft_wrap=True)
    failed = summary["failed_job"]
    corral = _invocation()
    shown_job = failed or summary["first_job"]
    hints = []
    if given_url and mask_url(given_url) == given_url:
        hints.append(("Use it from a shell:", f"export CORRAL_URL={shlex.quote(given_url)}"))
    elif given_url:  # not printed with its password: said in words, not as a command
        console.print("  Use it from a shell:   set CORRAL_URL to the --url you gave")
    hints += [
        ("Look at a failed job:" if failed else "Look at a job:", f"{corral} job {shown_job}"),
        ("Queues:", f"{corral} queues"),
        ("Run your own worker:", f"{corral} worker --help"),
        # Last: it serves until Ctrl-C (and names the extra to install when it is missing).
        ("See it in a dashboard:", f"{corral} demo --serve"),
    ]
    for label, command in hints:
        # soft_wrap: a long command stays on one line, so it can be copied as printed.
        console.print(f"  {label:<22} [cyan]{escape(command)}[/]", soft_wrap=True)


def _invocation() -> str:
    """How this process was started, so printed commands run from the same shell:
    ``corral`` when that is what PATH finds, else the script's path as typed (e.g.
    ``.venv/bin/corral``), else ``python -m corral``."""
    script = sys.argv[0]
    if Path(script).name != "corral":
        return f"{shlex.quote(sys.executable)} -m corral"
    found = shutil.which("corral")
    if found and Path(found).resolve() == Path(script).resolve():
        return "corral"
    return shlex.quote(script)


@click.command()
@click.option("--jobs", "n", type=click.IntRange(1, 1000), default=40, help="Jobs to run (40).")
@click.option(
    "--serve",
    is_flag=True,
    help="Also serve the dashboard and HTTP API on 127.0.0.1 (URL and a login key are "
    "printed), and keep a worker running until Ctrl-C.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port for --serve (0: any free one).",
)
@json_option
@click.pass_context
def demo(ctx: click.Context, n: int, serve: bool, port: int, as_json: bool) -> None:
    """Run sample jobs on an in-process worker and show what happens: a quick tour."""
    from corral.cli.commands import EXIT_USAGE, fail, run

    if not serve and ctx.get_parameter_source("port") is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--port needs --serve")
    try:
        app = Corral(ctx.ensure_object(dict).get("url"))
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    # With --json, stdout carries only the JSON; the live display goes to stderr.
    console = Console(stderr=as_json, highlight=False)

    def show(summary: dict[str, Any]) -> None:
        if as_json:
            click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
            return
        given = click.core.ParameterSource.COMMANDLINE
        url_from_cli = given in (
            ctx.find_root().get_parameter_source("url"),
            ctx.get_parameter_source("url"),
        )
        _print_summary(console, summary, app.url if url_from_cli else None)

    if not serve:
        show(run(lambda: _run(app, n, console), loop="auto"))
        return
    try:
        from corral.cli.demo_serve import Served, bind, serve_demo
        from corral.web import create_app  # noqa: F401  (the web extra is installed)
    except ImportError:
        fail(
            "--serve needs the web extra: pip install 'corral[web]' "
            "(in a checkout: pip install -e '.[web]')",
            EXIT_USAGE,
        )
    try:
        served = Served(bind(port))
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    url = app.url
    run(lambda: serve_demo(url, served, console, lambda: _run(app, n, console), show), loop="auto")
