"""A Flask app with Corral for tests/contrib/test_flask.py (in process, and as
``flask --app tests.contrib.flask_app corral worker`` with TEST_CORRAL_URL)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from flask import Flask, current_app, g, jsonify

from corral import Corral, current_job
from corral.contrib.flask import FlaskCorral
from corral.errors import CorralError

corral = Corral()
ext = FlaskCorral(corral=corral)

#: Ids of the jobs whose app context was torn down (teardown_appcontext).
TORN_DOWN: list[str] = []


@corral.task(name="flaskglue.inside", queue="flaskq")
def inside(n: int) -> dict[str, Any]:
    before = getattr(g, "marker", None)
    g.marker = n
    return {
        "app": current_app.name,
        "greeting": current_app.config["GREETING"],
        "g_before": before,
        "torn_down": list(TORN_DOWN),
        "thread": threading.current_thread().name,
    }


@corral.task(name="flaskglue.inside_async", queue="flaskq")
async def inside_async() -> dict[str, Any]:
    before = getattr(g, "marker", None)
    g.marker = "async"
    return {"app": current_app.name, "g_before": before}


def create_app(url: str | None = None) -> Flask:
    app = Flask("flaskglue")
    app.config.update(
        GREETING="hi",
        CORRAL_URL=url or os.environ["TEST_CORRAL_URL"],
        CORRAL_QUEUES="flaskq",
        CORRAL_CONCURRENCY=3,
        CORRAL_API_KEYS=os.environ.get("TEST_CORRAL_API_KEYS", ""),
    )
    ext.init_app(app)

    @app.teardown_appcontext
    def note(exc: BaseException | None) -> None:
        with contextlib.suppress(CorralError):  # raised in a request's app context
            TORN_DOWN.append(current_job().id)

    @app.post("/reports/<int:n>")
    def report(n: int) -> Any:
        job = current_app.extensions["corral"].corral.enqueue_sync("flaskglue.inside", [n])
        return jsonify(id=job.id)

    return app
