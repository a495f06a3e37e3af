"""Request and response bodies and parameters of the HTTP API (they make the OpenAPI
document), and the error answers each route declares."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
)

from corral.policy import JOB_ID, KEY, QUEUE_NAME, TASK_NAME

__all__ = [
    "ACTION_ERRORS",
    "COMMON_ERRORS",
    "JOB_ERRORS",
    "JSON_VALUE_SCHEMA",
    "MAX_BULK_JOBS",
    "BlockerOut",
    "BlockersOut",
    "BulkEnqueueOut",
    "BulkEnqueueRequest",
    "CleanRequest",
    "Count",
    "EnqueueRequest",
    "HistoryOut",
    "JobId",
    "JobOut",
    "JobPage",
    "Problem",
    "QueueName",
    "QueueOut",
    "ScheduleName",
    "ScheduleOut",
    "WorkerOut",
    "problems",
    "streamed",
]


def _whole(pattern: str) -> str:
    return f"^{pattern}$"


QueueName = Annotated[str, Path(min_length=1, max_length=100, pattern=_whole(QUEUE_NAME))]
JobId = Annotated[str, Path(min_length=1, max_length=200, pattern=_whole(JOB_ID))]
#: Schedule names follow the task-name rule (they end up in job ids).
ScheduleName = Annotated[str, Path(min_length=1, max_length=200, pattern=_whole(TASK_NAME))]

State = Literal["waiting", "delayed", "active", "completed", "failed", "cancelled", "blocked"]
Finished = Literal["completed", "failed", "cancelled"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _no_bool_or_text(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("Input should be a number")  # neither false nor "5" is a number
    return value


#: JSON numbers only (as the schema says): 5.0 is the integer 5, but false and "5" are
#: refused instead of coerced.
Seconds = Annotated[float, Strict()]
Integer = Annotated[int, BeforeValidator(_no_bool_or_text)]
# (the None inside: outside, pydantic would publish the bounds as non-schema "ge"/"le")
OptionalInteger = Annotated[int | None, BeforeValidator(_no_bool_or_text)]


def _given(*names: str) -> dict[str, Any]:
    """JSON Schema: each of ``names`` is present and not null."""
    return {"required": list(names), "properties": {n: {"not": {"type": "null"}} for n in names}}


#: The rules between fields (options.py, JobOptions.check_dedupe), stated in the schema.
_ENQUEUE_RULES: dict[str, Any] = {
    "allOf": [
        {"not": _given("dedupe_window", "debounce")},
        {"not": _given("debounce", "delay")},
        {
            "if": {"anyOf": [_given("dedupe_window"), _given("debounce")]},
            "then": _given("dedupe_key"),
        },
    ]
}


_JSON_VALUE_REF = "#/components/schemas/JsonValue"
#: Any JSON value the store can hold: integers within 64 bits (create_app adds it to
#: the document's components; pydantic validates such values as plain JSON).
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "any JSON value; whole numbers within -2^63 .. 2^64-1",
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "string"},
        {"type": "integer", "minimum": -(2**63), "maximum": 2**64 - 1},
        {"type": "number", "not": {"type": "integer"}},
        {"type": "array", "items": {"$ref": _JSON_VALUE_REF}},
        {"type": "object", "additionalProperties": {"$ref": _JSON_VALUE_REF}},
    ],
}
_INT_RANGE = (-(2**63), 2**64 - 1)


def _whole_beyond_64_bits(item: object) -> bool:
    return (
        isinstance(item, float) and item.is_integer() and not _INT_RANGE[0] <= item <= _INT_RANGE[1]
    )


def _fits_the_store(value: Any) -> Any:
    """Refuse whole numbers outside 64 bits written as 1e20 (the schema calls that an
    integer too); the int form is refused at enqueue, naming the task's parameter."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif _whole_beyond_64_bits(item):
            raise ValueError(f"the whole number {item} does not fit 64 bits")
    return value


JsonValue = Annotated[
    Any, AfterValidator(_fits_the_store), WithJsonSchema({"$ref": _JSON_VALUE_REF})
]


class EnqueueRequest(_Strict):
    """A job to enqueue, by task name. ``dedupe_window`` and ``debounce`` need a
    ``dedupe_key`` and exclude each other; ``debounce`` excludes ``delay``."""

    model_config = ConfigDict(json_schema_extra=_ENQUEUE_RULES)

    task: str = Field(
        min_length=1, max_length=200, pattern=_whole(TASK_NAME), examples=["emails.send"]
    )
    args: list[JsonValue] = Field(default_factory=list, examples=[["a@example.com", "Hi"]])
    kwargs: dict[str, JsonValue] = Field(default_factory=dict)
    queue: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=_whole(QUEUE_NAME)
    )
    delay: Seconds | None = Field(default=None, ge=0, le=10 * 365 * 86400, description="seconds")
    priority: OptionalInteger = Field(default=None, ge=-1000, le=1000, description="higher first")
    attempts: OptionalInteger = Field(default=None, ge=1, le=1000)
    timeout: Seconds | None = Field(default=None, gt=0, le=30 * 86400, description="seconds")
    job_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=_whole(JOB_ID))
    group: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=_whole(KEY),
        description="tenant: groups with waiting jobs take turns",
        examples=["restaurant-42"],
    )
    dedupe_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=_whole(KEY),
        description="while the job holding this key is unfinished (or within dedupe_window), "
        "an enqueue with the same key returns that job",
    )
    dedupe_window: Seconds | None = Field(
        default=None, gt=0, le=365 * 86400, description="seconds the dedupe key is held"
    )
    debounce: Seconds | None = Field(
        default=None,
        gt=0,
        le=365 * 86400,
        description="seconds: the job starts this long after the last enqueue with its "
        "dedupe_key, with that enqueue's arguments",
    )


#: Most jobs one ``POST /api/v1/jobs/bulk`` takes.
MAX_BULK_JOBS = 1000


class BulkEnqueueRequest(_Strict):
    """Jobs to enqueue together, all or nothing."""

    jobs: list[EnqueueRequest] = Field(
        min_length=1,
        max_length=MAX_BULK_JOBS,
        description=f"1 to {MAX_BULK_JOBS:,} jobs, each as POST /api/v1/jobs takes it",
    )


class EnqueuedOut(BaseModel):
    id: str
    queue: str
    state: State
    created: bool = Field(description="false when an existing job stands for it")


class BulkEnqueueOut(BaseModel):
    jobs: list[EnqueuedOut] = Field(description="one per job, in the order of the request")
    created: int = Field(description="how many of them were created")


class CleanRequest(_Strict):
    state: Finished = "completed"
    older_than: Seconds = Field(default=0, ge=0, le=100 * 365 * 86400, description="seconds")
    limit: Integer = Field(default=10_000, ge=1, le=100_000)


class ChildOut(BaseModel):
    """A job spawned by the one shown (``WaitForChildren``)."""

    name: str = Field(description="its name in the parent's dependency results")
    queue: str
    id: str
    state: State
    task: str


class ParentOut(BaseModel):
    """The job that spawned the one shown (``WaitForChildren``)."""

    queue: str
    id: str


class JobOut(BaseModel):
    id: str
    queue: str
    name: str
    state: State
    args: list[Any]
    kwargs: dict[str, Any]
    priority: int
    group: str | None = None
    worker: str | None = Field(
        None, description="id (host:pid:tag) of the worker that took the latest attempt"
    )
    attempts: int
    stalls: int
    progress: Any = None
    result: Any = None
    errors: list[dict[str, Any]]
    logs: list[str]
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    run_at: str | None
    cancel_requested: bool
    corrupt: dict[str, str] = Field(
        default_factory=dict,
        description="stored fields that could not be decoded (args, progress, result, "
        "errors) -> their raw text (*** for args, progress and result to read-only keys); "
        "such a field reads as empty",
    )
    created: bool | None = Field(
        default=None,
        description="on enqueue: false when an existing job stands for it (same job_id, "
        "dedupe_key or debounce)",
    )
    children: list[ChildOut] | None = Field(
        default=None,
        description="on GET of one job: the jobs it spawned (WaitForChildren), every "
        "wait's, in the order spawned ([] when none; removed ones left out)",
    )
    parent: ParentOut | None = Field(
        default=None,
        description="on GET of one job: the job that spawned it (WaitForChildren); null "
        "when it was not spawned, or its parent has been removed",
    )


class BlockerOut(BaseModel):
    kind: Literal[
        "dependencies",
        "delayed",
        "paused",
        "no_worker",
        "concurrency",
        "group_cap",
        "rate_limit",
        "position",
    ]
    message: str = Field(description="the reason in plain English")
    until: str | None = Field(None, description="when it lifts by itself (ISO 8601, UTC), if known")


class BlockersOut(BaseModel):
    id: str
    queue: str
    state: State
    blockers: list[BlockerOut] = Field(
        description="why the job has not started, most fundamental first; empty for a "
        "running or finished job, or one first in line with nothing holding it"
    )


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class QueueOut(BaseModel):
    name: str
    waiting: int
    delayed: int
    active: int
    completed: int
    failed: int
    cancelled: int
    paused: bool
    workers: int
    healthy: bool
    reason: str = Field(description="why the queue is (un)healthy")
    blocked: int = Field(0, description="flow jobs waiting for their dependencies")


class WorkerOut(BaseModel):
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    active: int
    processed: int
    failed: int
    stuck: int = Field(0, description="threads still running a sync job that timed out")
    started_at: int
    last_seen: int
    jobs: list[tuple[str, str]] = Field(
        default_factory=list, description="(queue, job id) pairs it runs, as of last_seen"
    )
    version: str | None = Field(None, description="its Corral version (None: too old to say)")
    children: int = Field(0, description="child processes of isolated tasks alive (idle or busy)")


class ScheduleOut(BaseModel):
    name: str
    task: str
    queue: str
    cron: str | None = Field(description="5-field cron expression (or alias), in tz")
    every: float | None = Field(description="interval in seconds (when not cron)")
    tz: str
    args: list[Any]
    kwargs: dict[str, Any]
    catch_up: bool
    paused: bool
    next_run_at: str | None = Field(description="the pending tick; null while paused")
    last_run_at: str | None


class Count(BaseModel):
    count: int


class HistoryPointOut(BaseModel):
    ts: int = Field(description="start of the slot, ms since the epoch")
    completed: int
    failed: int = Field(description="jobs that failed for good (not retries)")
    p95_ms: float | None = Field(description="p95 run time of the completions; null if none")


class HistoryTotals(BaseModel):
    completed: int
    failed: int
    p95_ms: float | None


class HistoryOut(BaseModel):
    queue: str | None
    span: Literal["hour", "day"]
    step_seconds: int = Field(description="width of each point: 60 (hour) or 900 (day)")
    points: list[HistoryPointOut] = Field(description="oldest first; the last holds now")
    totals: HistoryTotals


class Problem(BaseModel):
    """Every error answer: a message that names what was wrong."""

    error: str
    detail: Any = None


_WHY = {
    401: "no API key, or an unknown one (send 'Authorization: Bearer <key>')",
    403: "the key's scope is too low for this route",
    404: "no such job",
    409: "the job's state does not allow this action",
    413: "the request body is over the server's limit",
    422: "invalid input: the message names the parameter or field",
    503: "the backend is unavailable",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring that these error codes answer with a Problem."""
    return {code: {"model": Problem, "description": _WHY[code]} for code in codes}


def streamed(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a 200 that is not JSON (use with ``response_class=Response``
    so the error answers stay documented as JSON)."""
    content = {media_type: {"schema": {"type": "string"}}}
    return {200: {"description": description, "content": content}}


#: Every authenticated route can answer these.
COMMON_ERRORS = problems(401, 403, 413, 422, 503)
#: Routes that name a job.
JOB_ERRORS = problems(404)
#: Actions on a job, which its state can refuse.
ACTION_ERRORS = problems(404, 409)
