"""``manage.py corral_worker``: a Corral worker with Django set up."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.utils.module_loading import autodiscover_modules

from corral.cli.commands import LOOPS, loop_factory
from corral.cli.worker_process import run_worker
from corral.contrib.django.checks import check_reachable, corral_aliases
from corral.errors import CorralError


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no types
    help = (
        "Run a Corral worker for a django.tasks backend until SIGTERM/SIGINT (a second "
        "signal stops at once). Sync tasks run in threads, each job between two "
        "close_old_connections(), like a request."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--backend",
            default="default",
            help="The TASKS alias to serve (default: %(default)s).",
        )
        parser.add_argument(
            "-q",
            "--queues",
            help="Comma-separated queues, served in this order (default: the backend's "
            "QUEUES, then those of OPTIONS['app']'s own tasks).",
        )
        parser.add_argument("-c", "--concurrency", type=int, help="Jobs run at once (default 10).")
        parser.add_argument("--lease", type=float, default=8.0, help="Lease seconds (default 8).")
        parser.add_argument(
            "--grace", type=float, default=30.0, help="Seconds to finish on stop (default 30)."
        )
        parser.add_argument("--max-stalls", type=int, default=1, help="Default 1.")
        parser.add_argument(
            "--log-level", choices=["debug", "info", "warning", "error"], default="info"
        )
        parser.add_argument("--log-format", choices=["text", "json"], default="text")
        parser.add_argument("--loop", choices=LOOPS, default="auto")

    def handle(self, *args: Any, **options: Any) -> None:
        from corral.contrib.django._compat import task_backends
        from corral.contrib.django.backend import CorralBackend

        alias = options["backend"]
        if alias not in corral_aliases():
            raise CommandError(
                f"TASKS[{alias!r}] is not a corral.contrib.django.CorralBackend "
                f"(Corral backends: {', '.join(corral_aliases()) or 'none'})"
            )
        try:
            backend = task_backends[alias]
        except Exception as exc:
            raise CommandError(f"TASKS[{alias!r}]: {exc}") from None
        assert isinstance(backend, CorralBackend)
        for error in check_reachable():
            if f"TASKS[{alias!r}]" in error.msg:
                raise CommandError(f"{error.msg} ({error.id})")
        # Define every installed app's tasks (tasks.py) now; others are imported when
        # their first job arrives.
        autodiscover_modules("tasks")
        queues: list[str] | None
        if options["queues"]:
            queues = [q.strip() for q in options["queues"].split(",") if q.strip()]
        else:
            queues = self._default_queues(backend)
        connections.close_all()  # the checks' connections: jobs open their own
        try:
            with asyncio.Runner(loop_factory=loop_factory(options["loop"])) as runner:
                runner.run(
                    run_worker(
                        backend.app,
                        queues,
                        concurrency=options["concurrency"],
                        lease=options["lease"],
                        grace=options["grace"],
                        max_stalls=options["max_stalls"],
                        log_level=options["log_level"],
                        log_format=options["log_format"],
                    )
                )
        except CorralError as exc:
            raise CommandError(str(exc)) from None

    @staticmethod
    def _default_queues(backend: Any) -> list[str] | None:
        """The backend's QUEUES in their settings order, then the queues of the Corral
        app's own tasks (OPTIONS["app"]); None (every task's queue) when QUEUES is
        empty, allowing any."""
        from django.conf import settings

        listed = settings.TASKS[backend.alias].get("QUEUES", ["default"])
        native = [
            task.queue
            for task in backend.app.tasks.values()
            if not hasattr(task.fn, "__django_task__")
        ]
        return list(dict.fromkeys([*listed, *native])) or None
