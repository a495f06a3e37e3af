"""Gives an asyncio peer's worker process the event loop Corral runs by default.

Imported by Python at start-up in every worker process the harness starts (it puts
bench/ on ``PYTHONPATH``). With ``BENCH_LOOP=uvloop`` in the environment (set for the
asyncio peers, see ``System.uvloop``) it makes uvloop asyncio's default loop, so
``asyncio.run`` and ``new_event_loop`` in a peer's own CLI use it; which loop actually
ran each worker's jobs is recorded by the job (``systems.common.LOOPS``) and reported.
"""

import os

if os.environ.get("BENCH_LOOP") == "uvloop":
    import asyncio

    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
