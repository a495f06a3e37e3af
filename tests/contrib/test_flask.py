"""corral.contrib.flask: a real Flask app served by werkzeug on loopback, tasks run in
its app context by a worker, configuration from app.config, and ``flask corral
worker`` as a real process, on both backends."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask
from werkzeug.serving import make_server

from corral import Corral
from corral.contrib.flask import FlaskCorral
from corral.errors import ConfigurationError
from corral.worker import Worker
from tests.contrib import flask_app
from tests.web.conftest import ADMIN_KEY, bearer, wait_until

ROOT = Path(__file__).resolve().parents[2]


class FlaskServer:
    """werkzeug's threaded server on 127.0.0.1:<free port>, in a thread."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def served(store_url: str) -> Iterator[FlaskServer]:
    flask_app.TORN_DOWN.clear()
    server = FlaskServer(flask_app.create_app(store_url))
    try:
        yield server
    finally:
        server.stop()
        flask_app.corral.close_sync()


async def test_jobs_run_inside_the_app_context(served: FlaskServer, store_url: str) -> None:
    corral = flask_app.corral
    assert corral.url == store_url  # CORRAL_URL from app.config
    worker = Worker(corral, ["flaskq"], grace=1.0, block=0.5)
    running = asyncio.create_task(worker.run())
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=15) as http:
            first = (await http.post("/reports/1")).json()["id"]
            done = await (await corral.get_job(first, "flaskq")).result(timeout=10)
            assert done["app"] == "flaskglue" and done["greeting"] == "hi"
            assert done["g_before"] is None
            assert done["thread"].startswith("corral-job")  # a sync task, in a thread
            second = (await http.post("/reports/2")).json()["id"]
            done = await (await corral.get_job(second, "flaskq")).result(timeout=10)
            assert done["g_before"] is None  # a fresh g per job
            assert done["torn_down"] == [first]  # the first job's context was popped
        job = await corral.enqueue("flaskglue.inside_async", [])
        done = await job.result(timeout=10)
        assert done == {"app": "flaskglue", "g_before": None}
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)
        await corral.close()


async def test_flask_corral_worker_command(store_url: str) -> None:
    env = {
        **os.environ,
        "TEST_CORRAL_URL": store_url,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "tests.contrib.flask_app",
            "corral",
            "worker",
            "--grace",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    producer = Corral(store_url)
    try:
        job = await producer.enqueue("flaskglue.inside", [7], queue="flaskq")
        done = await job.result(timeout=20)
        assert done["app"] == "flaskglue" and done["greeting"] == "hi"
        (info,) = await wait_until(producer.workers, timeout=10)
        assert info.queues == ["flaskq"] and info.concurrency == 3  # from app.config
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        output = proc.stdout.read() if proc.stdout else ""
        assert "stopped" in output, output
        assert await producer.workers() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout:
            proc.stdout.close()
        await producer.close()


async def test_flask_corral_serve_command(sqlite_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "TEST_CORRAL_URL": sqlite_url,
        "TEST_CORRAL_API_KEYS": f"ops={ADMIN_KEY}:admin",  # CORRAL_API_KEYS in app.config
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    command = ["-m", "flask", "--app", "tests.contrib.flask_app", "corral", "serve"]
    proc = subprocess.Popen(
        [sys.executable, *command, "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:

            async def up() -> bool:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up, timeout=20, interval=0.1)
            assert (await http.get("/api/v1/queues")).status_code == 401
            answer = await http.get("/api/v1/queues", headers=bearer(ADMIN_KEY))
            assert answer.status_code == 200
            login = await http.get("/")
            assert login.status_code == 303 and login.headers["location"].startswith("/login")
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal it caught (as `corral serve` does).
        assert proc.wait(15) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout:
            proc.stdout.close()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CORRAL_CONCURRENCY", "lots"),
        ("CORRAL_CONCURRENCY", 0),
        ("CORRAL_QUEUES", [1, 2]),
        ("CORRAL_QUEUES", ""),
        ("CORRAL_URL", "postgres://db/jobs"),
    ],
)
def test_bad_configuration_names_the_key(key: str, value: object, sqlite_url: str) -> None:
    app = Flask("bad")
    app.config[key] = value
    with pytest.raises(ConfigurationError, match=key if key != "CORRAL_URL" else "scheme"):
        FlaskCorral(app, corral=Corral(sqlite_url))
    assert "corral" not in app.extensions


def test_extension_registered_and_cli_added(sqlite_url: str) -> None:
    app = Flask("registered")
    app.config["CORRAL_URL"] = sqlite_url
    ext = FlaskCorral(app)
    assert app.extensions["corral"] is ext and ext.corral.url == sqlite_url
    result = app.test_cli_runner().invoke(args=["corral", "worker", "--help"])
    assert result.exit_code == 0 and "--concurrency" in result.output


def test_importing_without_the_framework_names_the_extra() -> None:
    code = (
        "import sys\n"
        "for name, module in (('flask', 'corral.contrib.flask'),"
        " ('fastapi', 'corral.contrib.fastapi')):\n"
        "    sys.modules[name] = None\n"
        "    try:\n"
        "        __import__(module)\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert "pip install 'corral[flask]'" in out.stdout, out.stdout + out.stderr
    assert "pip install 'corral[fastapi]'" in out.stdout, out.stdout + out.stderr
