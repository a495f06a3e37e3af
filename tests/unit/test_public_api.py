"""The public names of the package: changing them is a deliberate, visible act."""

from __future__ import annotations

import corral

EXPECTED = [
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


def test_all_is_pinned() -> None:
    assert sorted(corral.__all__) == EXPECTED


def test_every_public_name_exists() -> None:
    missing = [name for name in corral.__all__ if not hasattr(corral, name)]
    assert missing == []


def test_no_duplicates_in_all() -> None:
    assert len(corral.__all__) == len(set(corral.__all__))


def test_every_error_derives_from_corral_error() -> None:
    errors = [
        getattr(corral, name)
        for name in corral.__all__
        if isinstance(getattr(corral, name), type)
        and issubclass(getattr(corral, name), BaseException)
    ]
    assert len(errors) == 24
    assert all(issubclass(err, corral.CorralError) for err in errors)


def test_version_is_a_string() -> None:
    assert isinstance(corral.__version__, str)
    assert corral.__version__.count(".") == 2
