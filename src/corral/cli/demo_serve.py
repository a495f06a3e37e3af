"""``corral demo --serve``: the demo, with the dashboard and HTTP API served beside it on
a loopback port, and a worker left running so actions taken there (retry, run again)
happen. Ctrl-C (or SIGTERM) stops it all."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import secrets
import shlex
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape

from corral.app import Corral
from corral.demo_tasks import QUEUE
from corral.demo_tasks import register_demo_tasks as register
from corral.errors import ConfigurationError, CorralError
from corral.worker import Worker

__all__ = ["Served", "bind", "serve_demo"]

HOST = "127.0.0.1"


def bind(port: int) -> socket.socket:
    """A listening socket on the loopback ``port`` (0: any free one); ConfigurationError
    when it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {port} on {HOST} is in use: pick another with --port (0 takes any free one)"
            ) from None
        raise ConfigurationError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
    return sock


class Served:
    """Where the demo is served and the key that logs in (admin scope)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.url = f"http://{HOST}:{sock.getsockname()[1]}"
        self.key = "demo-" + secrets.token_urlsafe(18)

    def job_url(self, job_id: str) -> str:
        return f"{self.url}/queues/{QUEUE}/jobs/{job_id}"

    def curl(self) -> str:
        header = shlex.quote(f"Authorization: Bearer {self.key}")
        return f"curl -H {header} {self.url}/api/v1/queues"


def _server(web: Any) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # serve_demo owns SIGINT/SIGTERM: one Ctrl-C stops the demo, the worker and
            # the server together, then the command exits 0.
            yield

    config = uvicorn.Config(
        web, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    return Server(config)


async def serve_demo(
    url: str | None,
    served: Served,
    console: Console,
    demo: Callable[[], Coroutine[Any, Any, dict[str, Any]]],
    show: Callable[[dict[str, Any]], None],
) -> dict[str, Any] | None:
    """Serve on ``served.sock``, run ``demo()`` and ``show`` its summary, then keep
    serving (with a worker on the demo queue) until SIGINT/SIGTERM. Returns the
    summary, or None when stopped before the demo finished."""
    from corral.web import create_app

    web_app = Corral(url)  # its own app: the demo closes its one when it finishes
    register(web_app)
    server = _server(create_app(web_app, api_keys={served.key: "admin"}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        stop.set()
        server.handle_exit(sig, None)  # also ends open live streams (sse-starlette)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C interrupts instead
            loop.add_signal_handler(sig, on_signal, sig)
    serving = asyncio.create_task(server.serve(sockets=[served.sock]), name="corral-demo-http")
    worker: Worker | None = None
    running: asyncio.Task[None] | None = None
    try:
        while not server.started:
            if serving.done():
                serving.result()
                raise CorralError("the demo's HTTP server stopped while starting")
            await asyncio.sleep(0.01)
        _say(console, f"Dashboard: [bold]{served.url}/[/]   login key: [bold]{served.key}[/]")
        _say(console, f"API:       [cyan]{escape(served.curl())}[/]")
        demo_run = asyncio.create_task(demo(), name="corral-demo")
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({demo_run, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not demo_run.done():
            demo_run.cancel()
            await asyncio.gather(demo_run, return_exceptions=True)
            return None
        stopping.cancel()
        summary = demo_run.result()
        show(summary)
        if summary["failed_job"]:
            link = served.job_url(summary["failed_job"])
            _say(console, f"\nThe failed job in the dashboard: [cyan]{escape(link)}[/]")
        _say(
            console,
            f"Serving {served.url}/ (login key: {served.key}) with a worker on queue "
            f"{QUEUE!r}, so jobs you retry or enqueue there run; Ctrl-C stops.",
        )
        worker = Worker(web_app, [QUEUE], concurrency=10, lease=10, heartbeat=1, grace=5)
        running = asyncio.create_task(worker.run(), name="corral-demo-worker")
        await stop.wait()
        return summary
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
        if worker is not None and running is not None:
            worker.stop()
            await asyncio.gather(running, return_exceptions=True)
        server.should_exit = True
        await asyncio.gather(serving, return_exceptions=True)
        await web_app.close()  # the lifespan closes it too; closing twice is harmless
        served.sock.close()


def _say(console: Console, text: str) -> None:
    # soft_wrap: a URL or command stays on one line, so it can be copied as printed.
    console.print(text, soft_wrap=True)
    console.file.flush()
