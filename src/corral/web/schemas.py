"""Request and response bodies of the HTTP API (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CleanRequest",
    "Count",
    "EnqueueRequest",
    "JobOut",
    "JobPage",
    "Problem",
    "QueueOut",
    "WorkerOut",
]

State = Literal["waiting", "delayed", "active", "completed", "failed", "cancelled"]
Finished = Literal["completed", "failed", "cancelled"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnqueueRequest(_Strict):
    """A job to enqueue, by task name."""

    task: str = Field(min_length=1, max_length=200, examples=["emails.send"])
    args: list[Any] = Field(default_factory=list, examples=[["a@example.com", "Hi"]])
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = Field(default=None, min_length=1, max_length=100)
    delay: float | None = Field(default=None, ge=0, le=10 * 365 * 86400, description="seconds")
    priority: int | None = Field(default=None, ge=-1000, le=1000, description="higher first")
    attempts: int | None = Field(default=None, ge=1, le=1000)
    timeout: float | None = Field(default=None, gt=0, le=30 * 86400, description="seconds")
    job_id: str | None = Field(default=None, min_length=1, max_length=200)
    group: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="tenant: groups with waiting jobs take turns",
        examples=["restaurant-42"],
    )
    dedupe_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="while the job holding this key is unfinished (or within dedupe_window), "
        "an enqueue with the same key returns that job",
    )
    dedupe_window: float | None = Field(
        default=None, gt=0, le=365 * 86400, description="seconds the dedupe key is held"
    )
    debounce: float | None = Field(
        default=None,
        gt=0,
        le=365 * 86400,
        description="seconds: the job starts this long after the last enqueue with its "
        "dedupe_key, with that enqueue's arguments",
    )


class CleanRequest(_Strict):
    state: Finished = "completed"
    older_than: float = Field(default=0, ge=0, le=100 * 365 * 86400, description="seconds")
    limit: int = Field(default=10_000, ge=1, le=100_000)


class JobOut(BaseModel):
    id: str
    queue: str
    name: str
    state: State
    args: list[Any]
    kwargs: dict[str, Any]
    priority: int
    group: str | None = None
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


class WorkerOut(BaseModel):
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    active: int
    processed: int
    failed: int
    started_at: int
    last_seen: int


class Count(BaseModel):
    count: int


class Problem(BaseModel):
    """Every error answer: a message that names what was wrong."""

    error: str
    detail: Any = None
