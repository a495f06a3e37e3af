"""Fault injection for the chaos suite: crash the worker at a named step.

Off unless ``CORRAL_FAULTS`` is set (e.g. ``after_claim=0.01,before_ack=0.02``): at
each named point the process exits at once (``os._exit``, like a SIGKILL: no
cleanup, no hand-back) with the given probability. Used to show that a crash
between any two steps of claiming and completing a job loses nothing.
"""

from __future__ import annotations

import os
import random

from corral.settings import fault_rates

__all__ = ["POINTS", "maybe_crash"]

#: after_claim: jobs leased, not started. before_ack: job ran, outcome not recorded.
#: after_ack: outcome recorded. before_fail: failure about to be recorded.
#: after_outbox_take: a relay took (holds) outbox entries, enqueued nothing yet.
#: before_outbox_ack: it enqueued their deliveries, has not acknowledged the entries.
#: flow_intent_written / flow_step_applied: (Redis Cluster) a producer wrote a flow's
#: creation intent / applied one of its steps, the rest not yet.
POINTS = (
    "after_claim",
    "before_ack",
    "after_ack",
    "before_fail",
    "after_outbox_take",
    "before_outbox_ack",
    "flow_intent_written",
    "flow_step_applied",
)
CRASH_EXIT_CODE = 86

_rates = fault_rates(POINTS)


def maybe_crash(point: str) -> None:
    """Exit the process now with the configured probability for ``point``."""
    rate = _rates.get(point)
    if rate and random.random() < rate:
        os._exit(CRASH_EXIT_CODE)
