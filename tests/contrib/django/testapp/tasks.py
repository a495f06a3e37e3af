"""Django tasks of the test app (found by the worker's autodiscovery of tasks.py)."""

import asyncio
import threading

from corral import current_job
from corral.contrib.django import corral_task
from tests.contrib.django.testapp.models import Note

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task

#: An in-process test opens it to let ``wait_for_gate`` finish.
GATE = threading.Event()
#: Attempts per key made of ``flaky``.
CALLS: dict[str, int] = {}


@task()
def write_note(db: str, text: str) -> int:
    return Note.objects.using(db).create(text=text).pk


@task()
def wait_for_gate(text: str) -> str:
    if not GATE.wait(10):
        raise TimeoutError("the test never opened the gate")
    return text.upper()


@corral_task(attempts=3, backoff=0.05)
def always_fails(message: str) -> None:
    raise ValueError(message)


@corral_task(attempts=3, backoff=0.05)
def flaky(key: str, failures: int) -> int:
    count = CALLS[key] = CALLS.get(key, 0) + 1
    if count <= failures:
        raise ConnectionError(f"attempt {count} failed")
    return count


@corral_task(timeout=0.3)
async def too_slow() -> None:
    await asyncio.sleep(10)


@task(takes_context=True, queue_name="emails", priority=20)
async def with_context(context, text: str) -> dict:
    return {"id": context.task_result.id, "attempt": context.attempt, "text": text}


@task()
def count_to(steps: int) -> int:
    for step in range(1, steps + 1):
        current_job().progress_sync({"done": step, "of": steps})
    return steps


@task()
def queries_logged(db: str) -> int:
    from django.db import connections

    Note.objects.using(db).count()
    return len(connections[db].queries)
