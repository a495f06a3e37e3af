"""Running jobs: the worker process and what it does for each job."""

from corral.worker.isolation import IsolationSettings
from corral.worker.worker import Worker

__all__ = ["IsolationSettings", "Worker"]
