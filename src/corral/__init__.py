"""Corral: background jobs for Python, on Redis or embedded SQLite.

Define tasks on a :class:`Corral` app, enqueue jobs from async or sync code, and
run them with ``corral worker``: retries with backoff, timeouts, priorities,
delays, leases that recover jobs from dead workers, progress, logs and results.
"""

from corral.app import Corral
from corral.backends.base import JobState, Retention, WorkerInfo
from corral.blockers import Blocker
from corral.context import Dependency, JobContext, current_job
from corral.errors import (
    BackendError,
    ConfigurationError,
    ConnectionFailed,
    CorralError,
    InvalidArguments,
    InvalidFlow,
    InvalidName,
    InvalidTransition,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobTimeout,
    LeaseLost,
    NoRetry,
    PayloadTooLarge,
    ResultTimeout,
    Retry,
    SerializationError,
    StoreFull,
    TaskSignal,
    UnknownTask,
    ValidationError,
    WaitForChildren,
    WorkerStartupFailed,
)
from corral.flow import Dep, Flow, chain, chord, group
from corral.flow_run import FlowRun
from corral.health import QueueHealth
from corral.hooks import JobEvent, Lifecycle
from corral.job import Job
from corral.policy import Backoff
from corral.queue import Queue
from corral.search import BulkResult, JobFilter
from corral.task import Call, Task

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "Backoff",
    "Blocker",
    "BulkResult",
    "Call",
    "ConfigurationError",
    "ConnectionFailed",
    "Corral",
    "CorralError",
    "Dep",
    "Dependency",
    "Flow",
    "FlowRun",
    "InvalidArguments",
    "InvalidFlow",
    "InvalidName",
    "InvalidTransition",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobEvent",
    "JobFailed",
    "JobFilter",
    "JobNotFound",
    "JobState",
    "JobTimeout",
    "LeaseLost",
    "Lifecycle",
    "NoRetry",
    "PayloadTooLarge",
    "Queue",
    "QueueHealth",
    "ResultTimeout",
    "Retention",
    "Retry",
    "SerializationError",
    "StoreFull",
    "Task",
    "TaskSignal",
    "UnknownTask",
    "ValidationError",
    "WaitForChildren",
    "WorkerInfo",
    "WorkerStartupFailed",
    "__version__",
    "chain",
    "chord",
    "current_job",
    "group",
]
