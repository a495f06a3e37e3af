"""Helpers for testing code that uses Corral, in your own test suite.

- :func:`inline`: each enqueue runs its job before it returns (through the store, with
  the job's JSON round trip, timeout and retries).
- :func:`run_until_idle` / :func:`run_until_idle_sync`: run a real worker until the
  queues are idle, re-raising the first job failure in the test.
- :func:`assert_enqueued` / :func:`assert_not_enqueued`: check the store for a job
  with given arguments; the failure lists what was enqueued instead.
- :func:`use_store`: point an app (its tasks included) at a test store for a while.
- The pytest plugin (:mod:`corral.testing.pytest_plugin`, loaded automatically
  where Corral is installed): the ``corral_url`` and ``corral_app`` fixtures.
"""

from corral.testing.asserts import assert_enqueued, assert_not_enqueued, enqueued_jobs
from corral.testing.idle import (
    IdleResult,
    IdleTimeout,
    JobError,
    run_until_idle,
    run_until_idle_sync,
)
from corral.testing.inline import inline
from corral.testing.store import use_store

__all__ = [
    "IdleResult",
    "IdleTimeout",
    "JobError",
    "assert_enqueued",
    "assert_not_enqueued",
    "enqueued_jobs",
    "inline",
    "run_until_idle",
    "run_until_idle_sync",
    "use_store",
]
