"""``corral``: run workers and inspect or steer jobs from a shell.

Exit codes: 0 success; 1 the backend failed or refused; 2 bad usage or input;
3 no such job; 4 the awaited job failed or was cancelled; 5 waiting timed out.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from corral.app import Corral
from corral.backends.base import JobState
from corral.cli import output
from corral.cli.commands import (
    EXIT_USAGE,
    LOOPS,
    add_shared_options,
    fail,
    json_arg,
    json_option,
    record_action,
    run,
    with_app,
    with_url,
)
from corral.cli.loader import load_app
from corral.errors import ConfigurationError, ValidationError
from corral.options import parse_bytes

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--url",
    envvar="CORRAL_URL",
    help="Backend URL (default: $CORRAL_URL, $REDIS_URL, sqlite:///corral.db).",
)
@click.option(
    "--app",
    "app_spec",
    envvar="CORRAL_APP",
    metavar="MODULE:APP",
    help="Your app, for task defaults (default: $CORRAL_APP).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (any command).")
@click.version_option(package_name="corral")
@click.pass_context
def main(ctx: click.Context, url: str | None, app_spec: str | None, as_json: bool) -> None:
    """Corral: background jobs on Redis or SQLite.

    --url, --app and --json go before or after the command."""
    ctx.ensure_object(dict).update(url=url, app_spec=app_spec, json=as_json)


def _byte_size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``--recycle-memory``: bytes, or a size like ``512MB`` / ``1GiB``."""
    if value is None:
        return None
    try:
        return parse_bytes("the size", value)
    except (ValueError, ValidationError) as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.argument("app_spec", metavar="MODULE:APP")
@click.option(
    "-q",
    "--queues",
    envvar="CORRAL_QUEUES",
    help="Comma-separated queues, served in this order (default: $CORRAL_QUEUES, else the queues of the app's tasks).",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    envvar="CORRAL_CONCURRENCY",
    help="Jobs run at once (default: $CORRAL_CONCURRENCY, else 10).",
)
@click.option(
    "--prefetch",
    type=click.IntRange(min=0),
    help="Jobs claimed ahead of free slots (default: half the concurrency while jobs "
    "average under 50 ms, else none; 0: never).",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0.1),
    default=8.0,
    show_default=True,
    help="Seconds a claimed job stays leased without renewal.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds running jobs get to finish on shutdown.",
)
@click.option(
    "--max-stalls",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Lease expiries a job survives before it fails.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Use 'warning' to silence per-job lines.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    envvar="CORRAL_LOG_FORMAT",
    default="text",
    show_default=True,
    help="json: one JSON object per line (a job's outcome with its id, task, queue, "
    "attempt, duration and trace id) (default: $CORRAL_LOG_FORMAT, else text).",
)
@click.option(
    "--kill-grace",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Isolated tasks: seconds between SIGTERM and SIGKILL when a job runs past its "
    "timeout or is cancelled.",
)
@click.option(
    "--recycle-memory",
    metavar="SIZE",
    callback=_byte_size,
    help="Isolated tasks: replace a child process whose resident memory is over SIZE "
    "(bytes, or 512MB, 1GiB) once its job ends (default: never).",
)
@click.option(
    "--sample-every",
    type=click.FloatRange(min=0.001, max=60),
    default=0.05,
    show_default=True,
    help="Isolated tasks: seconds between two readings of a running child's memory "
    "(for memory_limit).",
)
@click.option(
    "--loop",
    type=click.Choice(LOOPS),
    envvar="CORRAL_LOOP",
    default="auto",
    show_default=True,
    help="Event loop: auto is uvloop where installed (faster), else asyncio's.",
)
@click.pass_context
def worker(
    ctx: click.Context,
    app_spec: str,
    queues: str | None,
    concurrency: int | None,
    prefetch: int | None,
    lease: float,
    grace: float,
    max_stalls: int,
    log_level: str,
    log_format: str,
    kill_grace: float,
    recycle_memory: int | None,
    sample_every: float,
    loop: str,
) -> None:
    """Run jobs of MODULE:APP until SIGTERM/SIGINT (a second signal stops at once)."""
    from corral.cli.worker_process import run_worker
    from corral.worker.isolation import IsolationSettings

    try:
        app = load_app(app_spec)
        if ctx.obj.get("url"):
            app = with_url(app, ctx.obj["url"])
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    isolation = IsolationSettings(
        kill_grace=kill_grace, recycle_memory=recycle_memory, sample_every=sample_every
    )
    code = run(
        lambda: run_worker(
            app,
            names,
            concurrency=concurrency,
            lease=lease,
            grace=grace,
            max_stalls=max_stalls,
            log_level=log_level,
            log_format=log_format,
            isolation=isolation,
            prefetch=prefetch,
        ),
        loop=loop,
    )
    sys.exit(code)


@main.command()
@click.argument("task")
@click.option(
    "--args",
    "args_json",
    metavar="JSON|@FILE|-",
    help="Positional arguments: a JSON array, @file.json, or - to read stdin.",
)
@click.option(
    "--kwargs",
    "kwargs_json",
    metavar="JSON|@FILE|-",
    help="Keyword arguments: a JSON object, @file.json, or - to read stdin.",
)
@click.option("-q", "--queue", help="Queue (default: the task's, else 'default').")
@click.option(
    "--delay", type=click.FloatRange(min=0), help="Seconds to wait before the job may run."
)
@click.option("--priority", type=click.IntRange(-1000, 1000), help="Higher runs first.")
@click.option("--attempts", type=click.IntRange(min=1), help="Attempts before the job fails.")
@click.option("--job-id", help="Idempotency key: a second enqueue returns the same job.")
@click.option("--group", help="Tenant: groups with waiting jobs take turns.")
@click.option(
    "--dedupe-key", help="While the job holding this key is unfinished, return it instead."
)
@click.option(
    "--dedupe-window",
    type=click.FloatRange(min=0, min_open=True),
    help="Hold the dedupe key this many seconds (even after the job finished).",
)
@click.option(
    "--debounce",
    type=click.FloatRange(min=0, min_open=True),
    help="Start this many seconds after the last enqueue with the dedupe key.",
)
@click.option(
    "--wait", "wait", type=click.FloatRange(min=0), help="Wait this many seconds for the result."
)
@json_option
@with_app
def enqueue(
    app: Corral,
    task: str,
    args_json: str | None,
    kwargs_json: str | None,
    queue: str | None,
    delay: float | None,
    priority: int | None,
    attempts: int | None,
    job_id: str | None,
    group: str | None,
    dedupe_key: str | None,
    dedupe_window: float | None,
    debounce: float | None,
    wait: float | None,
    as_json: bool,
) -> None:
    """Enqueue a job of TASK (by name; the task need not be importable here)."""
    if args_json == kwargs_json == "-":
        raise click.UsageError("only one of --args and --kwargs can read stdin (-)")
    args = json_arg("--args", args_json, list)
    kwargs = json_arg("--kwargs", kwargs_json, dict)

    async def go() -> None:
        try:
            job = await app.enqueue(
                task,
                args,
                kwargs,
                queue=queue,
                delay=delay,
                priority=priority,
                attempts=attempts,
                job_id=job_id,
                group=group,
                dedupe_key=dedupe_key,
                dedupe_window=dedupe_window,
                debounce=debounce,
            )
            if not await app.queue(job.queue).workers():
                output.warn(
                    f"no live worker serves queue {job.queue!r}: the job waits until one "
                    f"does (corral worker MODULE:APP -q {job.queue}); -q QUEUE or "
                    "--app MODULE:APP picks the task's queue"
                )
            if wait is not None:
                await job.result(timeout=wait)
            await job.refresh()
            output.job(job, as_json)
        finally:
            await app.close()

    run(go)


@main.command()
@click.argument("job_id")
@click.option("-q", "--queue", help="Queue of the job (default: search every queue).")
@json_option
@with_app
def job(app: Corral, job_id: str, queue: str | None, as_json: bool) -> None:
    """Show a job: state, progress, result or error, attempts, timestamps, logs, and
    why it has not started yet (waiting or delayed)."""

    async def go() -> None:
        try:
            found = await app.get_job(job_id, queue)
            waiting = found.state in (JobState.WAITING, JobState.DELAYED)
            waits = await found.blockers() if waiting else []
            output.job(found, as_json, full=True, waits=waits)
        finally:
            await app.close()

    run(go)


@main.command()
@json_option
@with_app
def queues(app: Corral, as_json: bool) -> None:
    """Job counts per state for every queue."""

    async def go() -> None:
        try:
            rows = {queue.name: queue.counts for queue in await app.overview()}
            output.queues(rows, as_json)
        finally:
            await app.close()

    run(go)


@main.command()
@json_option
@with_app
def workers(app: Corral, as_json: bool) -> None:
    """The live workers: host, pid, queues, concurrency, jobs in hand, last heartbeat."""

    async def go() -> None:
        try:
            output.workers(await app.workers(), as_json)
        finally:
            await app.close()

    run(go)


def _bulk_or_one(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = json_option(fn)
        fn = click.option("-q", "--queue", help="Queue of the job, or the queue for --all.")(fn)
        fn = click.option(
            "--all", "all_", is_flag=True, help=f"{action} every matching job of --queue."
        )(fn)
        return click.argument("job_id", required=False)(fn)

    return decorate


@main.command()
@_bulk_or_one("Retry")
@with_app
def retry(app: Corral, job_id: str | None, all_: bool, queue: str | None, as_json: bool) -> None:
    """Retry a failed or cancelled job, or --all failed jobs of --queue."""
    _check_target(job_id, all_, queue)

    async def go() -> None:
        try:
            if all_:
                assert queue is not None
                retried = await app.queue(queue).retry_all()
                await record_action(app, "queue.retry_failed", queue, {"count": retried})
                output.count("retried", retried, as_json)
                return
            assert job_id is not None
            job = await app.get_job(job_id, queue)
            if not await job.retry():
                raise ValidationError(
                    f"job {job_id} is {job.state.value}; only failed or cancelled jobs can be retried"
                )
            await record_action(app, "job.retry", f"{job.queue}/{job_id}")
            output.count("retried", 1, as_json)
        finally:
            await app.close()

    run(go)


@main.command()
@_bulk_or_one("Cancel")
@with_app
def cancel(app: Corral, job_id: str | None, all_: bool, queue: str | None, as_json: bool) -> None:
    """Cancel a job (a running one is asked to stop), or --all waiting/delayed jobs of --queue."""
    _check_target(job_id, all_, queue)

    async def go() -> None:
        try:
            if all_:
                assert queue is not None
                cancelled = await app.queue(queue).cancel_all()
                await record_action(app, "queue.cancel_all", queue, {"count": cancelled})
                output.count("cancelled", cancelled, as_json)
                return
            assert job_id is not None
            job = await app.get_job(job_id, queue)
            state = await job.cancel()
            await record_action(app, "job.cancel", f"{job.queue}/{job_id}")
            output.message(
                {"id": job_id, "state": state.value},
                f"job {job_id}: {state.value}"
                + (" (asked to stop)" if state.value == "active" else ""),
                as_json,
            )
        finally:
            await app.close()

    run(go)


def _check_target(job_id: str | None, all_: bool, queue: str | None) -> None:
    if all_ and not queue:
        raise click.UsageError("--all needs --queue")
    if all_ and job_id:
        raise click.UsageError("give a JOB_ID or --all, not both")
    if not all_ and not job_id:
        raise click.UsageError("give a JOB_ID, or --all with --queue")


from corral.cli.demo import demo  # noqa: E402  (registered last: demo.py imports from here)

main.add_command(demo)

from corral.cli.serve import serve  # noqa: E402

main.add_command(serve)

from corral.cli.limits import limits  # noqa: E402

main.add_command(limits)

from corral.cli.queue_ops import COMMANDS as QUEUE_OPS  # noqa: E402

for _op in QUEUE_OPS:
    main.add_command(_op)


from corral.cli.jobs import jobs  # noqa: E402

main.add_command(jobs)

from corral.cli.bulk import bulk  # noqa: E402

main.add_command(bulk)

from corral.cli.schedule_ops import schedules  # noqa: E402

main.add_command(schedules)

from corral.cli.audit import audit  # noqa: E402

main.add_command(audit)

from corral.cli.history import history  # noqa: E402

main.add_command(history)

from corral.cli.notify import notify  # noqa: E402

main.add_command(notify)

from corral.cli.flows import flow  # noqa: E402

main.add_command(flow)


# --url and --app are accepted after the command as well as before it; commands that
# take MODULE:APP as their argument get --url only.
for _command in main.commands.values():
    add_shared_options(_command, app=_command.name not in ("worker", "serve", "demo"))
