"""Functions the isolation tests run in child processes (importable by module path,
as isolated tasks must be). Plain functions: each test registers them on its own app.
``app`` registers a few for ``corral worker`` subprocesses."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import time
from pathlib import Path

from corral import Corral, JobContext, NoRetry, Retry, WaitForChildren, chain

_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def add(a: int, b: int) -> int:
    return a + b


async def add_async(a: int, b: int) -> int:
    return a + b


def noop() -> None:
    return None


def pid() -> int:
    return os.getpid()


def spin() -> None:
    """A pure-Python loop that never ends (only a signal stops it)."""
    n = 0
    while True:
        n += 1


def burn(seconds: float) -> int:
    """Pure-Python CPU work for ``seconds`` (it holds its interpreter's GIL throughout)."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


_kept: list[bytes] = []


def keep(megabytes: int) -> int:
    """Allocates ``megabytes`` MiB and keeps them after the job (a leak); the pid."""
    _kept.append(b"x" * (megabytes << 20))
    return os.getpid()


def c_sleep(seconds: int) -> int:
    """Blocked in C (libc's sleep) for ``seconds``."""
    return int(_LIBC.sleep(seconds))


def stubborn(marker: str) -> None:
    """Ignores SIGTERM (only SIGKILL stops it); writes ``marker`` once it runs."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(marker).write_text(str(os.getpid()))
    while True:
        time.sleep(0.01)


def hog(megabytes: int) -> int:
    """Allocates and touches ``megabytes`` MiB."""
    block = b"x" * (megabytes << 20)
    return len(block)


def exit_now(code: int) -> None:
    os._exit(code)


def segfault() -> None:
    ctypes.string_at(0)


def boom(message: str) -> None:
    raise ValueError(message)


def report(ctx: JobContext, steps: int) -> str:
    for step in range(1, steps + 1):
        ctx.progress_sync({"step": step, "of": steps})
    ctx.log_sync(f"did {steps} steps in {os.getpid()}")
    return ctx.id


async def report_async(ctx: JobContext, steps: int) -> int:
    for step in range(1, steps + 1):
        await ctx.progress(step)
    await ctx.log("async done")
    return steps


def retry_once(ctx: JobContext) -> int:
    """Asks for a retry on its first attempt, then succeeds."""
    if ctx.attempt == 1:
        raise Retry("not yet", delay=0.01)
    return ctx.attempt


def give_up() -> None:
    raise NoRetry("hopeless")


def total(ctx: JobContext) -> int:
    """A flow's fan-in: the sum of its dependencies' results."""
    return sum(ctx.dependency_results_sync().values())


def wait_for_cancel(marker: str) -> None:
    """Records its pid in ``marker`` and sleeps until stopped."""
    Path(marker).write_text(str(os.getpid()))
    while True:
        time.sleep(0.01)


def _worker_pid() -> int:
    """The ``corral worker`` process this runs under: this one, or an ancestor (an
    isolated job's child is forked by the forkserver, itself a child of the worker)."""
    pid = os.getpid()
    while pid > 1:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"corral" in cmdline and b"worker" in cmdline:
            return pid
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    raise RuntimeError("not running under `corral worker`")


def kill_worker() -> None:
    """SIGKILLs the whole worker running it: the poison job."""
    os.kill(_worker_pid(), signal.SIGKILL)
    time.sleep(30)


app = Corral()
app.task(name="heavy.kill_worker", queue="poison", attempts=10)(kill_worker)
app.task(name="heavy.kill_worker_isolated", queue="poison", attempts=10, isolation="process")(
    kill_worker
)
app.task(name="heavy.add", queue="poison", isolation="process")(add)
app.task(name="heavy.keep", queue="heavy", isolation="process")(keep)


def double(x: int) -> int:
    return x * 2


#: The children isolated parents spawn: a task of this module's app, so the child
#: process has it (its queue "heavy" as the tests register it on their app).
DOUBLE = app.task(name="heavy.double", queue="heavy")(double)


def spawn_pages(ctx: JobContext, pages: int) -> int:
    """Spawn-and-wait from a child process: fan out, then sum the children's results."""
    counts = ctx.dependency_results_sync()
    if not counts:
        raise WaitForChildren([DOUBLE.call(n) for n in range(pages)])
    return sum(counts.values())


async def spawn_chain(ctx: JobContext, start: int) -> dict[str, int]:
    """Children that depend on each other: a chain, each doubling the one before."""
    results = await ctx.dependency_results()
    if not results:
        raise WaitForChildren(chain(DOUBLE.call(start), DOUBLE.call(), DOUBLE.call()))
    return results


def spawn_none() -> None:
    raise WaitForChildren([])
