"""The Corral app of the documents example: processing an uploaded document, and
sweeping away uploads whose job is gone.

Run a worker alone with ``corral worker examples.documents.tasks:app -c 2``
(``python -m examples.documents`` starts it for you, with ``JOB_CONCURRENCY``).

Settings (environment, read by the web app and the worker alike):

- ``UPLOAD_DIR`` (``uploads``): one directory per job, named by the job id.
- ``DOCS_RATE`` (``20/60``): job starts per window of seconds, for every worker
  together; it stands in for the AI API's rate limit.
- ``DOCS_ATTEMPTS`` (3) and ``DOCS_BACKOFF`` (``exponential``, ``fixed`` or seconds).
- ``AI_API_URL``: the AI service AI jobs call (``python -m examples.documents``
  starts a local fake one when unset).
- ``UPLOAD_SWEEP_EVERY`` (600 s) and ``UPLOAD_SWEEP_GRACE`` (300 s): how often the
  sweep runs, and how old an upload with no job must be before it is deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from corral import Corral, JobContext, JobNotFound, NoRetry, Retry
from corral.errors import ConfigurationError, ValidationError
from examples.documents.analysis import Analysis, local_insights, read_text

QUEUE = "documents"
#: Bull's priorities were 1 (AI, highest), 2 (regular), 3 (reprocessing); in Corral
#: a higher number runs first.
PRIORITY = {"ai": 10, "regular": 0, "reprocess": -10}


def _number(name: str, default: float, *, minimum: float = 0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def upload_dir() -> Path:
    return Path(os.environ.get("UPLOAD_DIR") or "uploads").resolve()


def rate_limit() -> tuple[int, float]:
    raw = os.environ.get("DOCS_RATE") or "20/60"
    jobs, _, seconds = raw.partition("/")
    try:
        count, window = int(jobs), float(seconds)
    except ValueError:
        count, window = 0, 0.0
    if count < 1 or not 0.001 <= window <= 86400:
        raise ConfigurationError(f"DOCS_RATE must be JOBS/SECONDS (e.g. 20/60), got {raw!r}")
    return count, window


def _backoff() -> str | float:
    raw = os.environ.get("DOCS_BACKOFF") or "exponential"
    return raw if raw in ("exponential", "fixed") else _number("DOCS_BACKOFF", 1.0)


app = Corral()


@app.on_startup
async def apply_rate_limit() -> None:
    """Every worker sets the queue's rate at start (the limit itself is stored with the
    queue and enforced in the claim, across all workers)."""
    await app.queue(QUEUE).set_limits(rate=rate_limit())


def stage(ctx: JobContext, name: str, percent: int) -> None:
    """Progress as the seed's clients read it (a percentage), plus the stage's name;
    each stage is logged too, so the job keeps the whole sequence."""
    ctx.progress_sync({"stage": name, "percent": percent})
    ctx.log_sync(f"stage {name}")


@app.task(
    name="documents.process",
    queue=QUEUE,
    attempts=int(_number("DOCS_ATTEMPTS", 3, minimum=1)),
    backoff=_backoff(),
    timeout=600,
)
def process_document(ctx: JobContext, path: str, options: dict[str, Any]) -> dict[str, Any]:
    """Read the uploaded file in blocks, cut it into chunks, find its themes, quotes
    and insights. A plain function: the CPU work runs in a worker thread, so the
    worker's event loop (and its lease renewals) keep going."""
    file = Path(path)
    if upload_dir() not in file.parents:
        raise NoRetry(f"{path} is not an upload (outside {upload_dir()})")
    if not file.is_file():
        raise NoRetry(f"the upload {file.name} is gone (removed before it was processed)")

    stage(ctx, "extract", 0)
    doc = Analysis()
    size = file.stat().st_size or 1
    reported = 0
    for text, done in read_text(file):
        doc.feed(text)
        percent = 40 * done // size
        if percent >= reported + 10:  # a report per tenth of the file, not per block
            reported = percent
            ctx.progress_sync({"stage": "extract", "percent": percent})
    doc.finish()
    if not doc.is_text:
        raise NoRetry(f"{options.get('filename', file.name)} has no readable text")

    stage(ctx, "chunk", 45)
    chunks = doc.chunks
    stage(ctx, "analyse", 60)
    themes, quotes = doc.themes(), doc.quotes()
    stage(ctx, "insights", 80)
    if options.get("useAI"):
        insights = ask_ai(ctx, doc.signals() or quotes)
    else:
        insights = local_insights(doc.signals())
    stage(ctx, "save", 95)
    analysis: dict[str, Any] = {
        "words": doc.total_words,
        "themes": themes,
        "quotes": quotes,
        "insights": insights,
    }
    if options.get("generateSummary"):
        analysis["summary"] = " ".join(quotes[:3])
    ctx.progress_sync({"stage": "done", "percent": 100})
    return {
        "documentId": options["documentId"],
        "status": "COMPLETED",
        "chunks": chunks,
        "themes": len(themes),
        "quotes": len(quotes),
        "insights": len(insights),
        "analysis": analysis,
    }


def ask_ai(ctx: JobContext, sentences: list[str]) -> list[str]:
    """Insights from the AI service. Its 429 brings the job back after Retry-After
    without spending an attempt; an outage (5xx, no answer) spends one, so a long
    outage ends in the failed set, to be retried from the API once it is over."""
    url = os.environ.get("AI_API_URL")
    if not url:
        raise NoRetry("AI_API_URL is not set: this worker cannot run AI jobs")
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/insights",
        data=json.dumps({"sentences": sentences[:15]}).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 429:
            wait = _number_or(exc.headers.get("retry-after"), 1.0)
            ctx.log_sync(f"AI service rate limit: retrying in {wait:g} s")
            raise Retry("AI service rate limit", delay=wait, count_attempt=False) from None
        raise RuntimeError(f"AI service answered {exc.code}") from None
    except OSError as exc:
        raise RuntimeError(f"AI service unreachable: {exc}") from None
    return [str(i) for i in answer.get("insights", [])]


def _number_or(raw: str | None, default: float) -> float:
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


@app.task(
    name="documents.sweep_uploads",
    queue=QUEUE,
    every=_number("UPLOAD_SWEEP_EVERY", 600, minimum=1),
)
async def sweep_uploads() -> dict[str, int]:
    """Delete the upload of every job that no longer exists, however it went: removed
    from the dashboard or CLI, cleaned, or dropped by retention (which sends no event).
    An upload younger than the grace period is left alone: its job may be being
    enqueued right now."""
    grace = _number("UPLOAD_SWEEP_GRACE", 300)
    root = upload_dir()
    kept = deleted = 0
    if not root.is_dir():
        return {"kept": 0, "deleted": 0}
    for entry in root.iterdir():
        if not entry.is_dir() or time.time() - entry.stat().st_mtime < grace:
            continue
        try:
            await app.get_job(entry.name, QUEUE)
        except ValidationError:
            continue  # not a job's directory: not ours to delete
        except JobNotFound:
            shutil.rmtree(entry, ignore_errors=True)
            deleted += 1
        else:
            kept += 1
    return {"kept": kept, "deleted": deleted}
