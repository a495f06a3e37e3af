"""``corral flow show|list|cancel|retry-failed``: read and steer flows (graphs of jobs)
from a shell, as the dashboard's flow pages and ``/api/v1/flows`` do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
import orjson
from rich.markup import escape

from corral.app import Corral
from corral.cli import output
from corral.cli.commands import (
    add_shared_options,
    json_option,
    record_action,
    run_closing,
    with_app,
)
from corral.flow_run import FlowRun

__all__ = ["flow"]


def _created(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _summary(data: dict[str, Any]) -> str:
    done, total = data["progress"]["done"], data["progress"]["total"]
    style = output.STATE_STYLE.get(data["state"], "")
    state = f"[{style}]{data['state']}[/]" if style else data["state"]
    return (
        f"[bold]flow {escape(data['id'])}[/]  {state}  {done} of {total} jobs ended  "
        f"created {_created(data['created_at'])}"
    )


def _show(run: FlowRun, as_json: bool) -> None:
    data = run.to_dict()
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    out = output.console()
    out.print(_summary(data))
    rows = [
        [j["name"], j["state"] or "removed", j.get("task") or "-", j["queue"], j["id"]]
        for j in data["jobs"]
    ]
    out.print(output.fit_table(["job", "state", "task", "queue", "id"], rows, shrink=(2, 4)))
    if data["edges"]:
        edges = [
            [e["to"], e["from"], e["on_failure"], "yes" if e["pass_result"] else ""]
            for e in data["edges"]
        ]
        headers = ["job", "waits for", "if it does not complete", "result passed"]
        out.print()
        out.print(output.fit_table(headers, edges, shrink=(0, 1)))


@click.group()
def flow() -> None:
    """Show, list, cancel or retry flows (graphs of jobs; see app.start_flow)."""


@flow.command()
@click.argument("flow_id")
@json_option
@with_app
def show(app: Corral, flow_id: str, as_json: bool) -> None:
    """A flow: state, progress, every job with its state, and the edges with their
    policies (what a job does when a job it waits for does not complete)."""

    async def go() -> None:
        _show(await app.get_flow(flow_id), as_json)

    run_closing(app, go)


@flow.command("list")
@click.option(
    "-n", "--limit", type=click.IntRange(1, 200), default=20, show_default=True,
    help="Flows per page.",
)  # fmt: skip
@click.option("--cursor", help="Where the next page starts (printed under a full page).")
@json_option
@with_app
def list_(app: Corral, limit: int, cursor: str | None, as_json: bool) -> None:
    """Flows, newest first: state, progress, jobs, created."""

    async def go() -> None:
        page = await app.list_flows(limit, cursor=cursor)
        items = [run.to_dict() for run in page.flows]
        if as_json:
            body = {"flows": items, "next_cursor": page.next_cursor}
            click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
            return
        out = output.console()
        if not items:
            out.print("no older flows" if cursor else "no flows yet")
            return
        rows = [
            [
                f["id"],
                f["state"],
                f"{f['progress']['done']}/{f['progress']['total']}",
                str(len(f["jobs"])),
                _created(f["created_at"]),
            ]
            for f in items
        ]
        headers = ["flow", "state", "ended", "jobs", "created"]
        out.print(output.fit_table(headers, rows, shrink=(0,), right=(2, 3)))
        if page.next_cursor:
            out.print(f"older: corral flow list --cursor {page.next_cursor}", markup=False)

    run_closing(app, go)


def _act(app: Corral, flow_id: str, as_json: bool, action: str, verb: str) -> None:
    """Cancel (``action`` "cancel") or retry-failed a flow, audit it, print the flow."""

    async def go() -> None:
        run = await app.get_flow(flow_id, read_jobs=action == "cancel")
        count = await (run.cancel() if action == "cancel" else run.retry_failed())
        await record_action(app, f"flow.{action}", flow_id, {"jobs": count})
        data = run.to_dict()
        text = f"flow {flow_id}: {verb} {count} job{'s' if count != 1 else ''}; now {data['state']}"
        output.message(data | {verb: count}, text, as_json)

    run_closing(app, go)


@flow.command()
@click.argument("flow_id")
@json_option
@with_app
def cancel(app: Corral, flow_id: str, as_json: bool) -> None:
    """Cancel every unfinished job of a flow (running ones are asked to stop)."""
    _act(app, flow_id, as_json, "cancel", "cancelled")


@flow.command("retry-failed")
@click.argument("flow_id")
@json_option
@with_app
def retry_failed(app: Corral, flow_id: str, as_json: bool) -> None:
    """Run a finished flow's failed and cancelled jobs again (after the jobs they wait
    for that are retried with them); completed jobs are not run again."""
    _act(app, flow_id, as_json, "retry", "retried")


for _command in flow.commands.values():
    add_shared_options(_command)
