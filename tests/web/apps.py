"""The Corral app the HTTP API tests serve and run workers for.

``build_app(url)`` gives a fresh app with the test tasks registered (the server and
the test's worker each get their own instance on the same URL); ``app`` is one for
``corral serve tests.web.apps:app`` (URL from CORRAL_URL).
"""

from __future__ import annotations

import asyncio
from typing import Any

from corral import Corral, JobContext, NoRetry

QUEUE = "web"


def build_app(url: str | None = None, **options: Any) -> Corral:
    app = Corral(url, **options)

    @app.task(name="web.echo", queue=QUEUE)
    async def echo(value: Any = None) -> Any:
        return value

    @app.task(name="web.progress", queue=QUEUE)
    async def progress(ctx: JobContext, steps: int = 5, pause: float = 0.05) -> int:
        for step in range(1, steps + 1):
            await asyncio.sleep(pause)
            await ctx.progress(step)
        return steps

    @app.task(name="web.block", queue=QUEUE, attempts=1)
    async def block(seconds: float = 30.0) -> str:
        await asyncio.sleep(seconds)
        return "woke"

    @app.task(name="web.fail", queue=QUEUE)
    async def fail(message: str = "boom") -> None:
        raise NoRetry(message)

    @app.task(name="web.secrets", queue=QUEUE)
    def secrets(*args: Any, **kwargs: Any) -> None:
        return None

    @app.task(name="web.login", queue=QUEUE)
    async def login(ctx: JobContext, user: str, password: str, *tokens: str) -> dict[str, Any]:
        await ctx.progress({"step": 1, "access_token": "progress-secret"})
        return {"user": user, "access_token": "result-secret", "nested": [{"api_key": "k"}]}

    return app


app = build_app()
