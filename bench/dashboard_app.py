"""The app the dashboard benchmarks load and serve (``corral serve bench.dashboard_app:app``)."""

from __future__ import annotations

from typing import Any

from corral import Corral, NoRetry

app = Corral()


@app.task(name="bench.noop", queue="big", attempts=1)
async def noop(*args: Any, **kwargs: Any) -> None:
    return None


@app.task(name="bench.fail", queue="big", attempts=1)
async def fail(*args: Any, **kwargs: Any) -> None:
    raise NoRetry("bench failure: upstream answered 502")
