"""What crosses the backend seam: job states, the records backends store and return,
and queue settings. The protocol itself is in :mod:`corral.backends.base`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "COUNTER_KEPT_MS",
    "DURATION_BUCKETS",
    "HISTORY_STEPS",
    "KEEP_ALL",
    "POSITION_BOUND",
    "AuditRecord",
    "ClaimedJob",
    "Completion",
    "HistoryWindow",
    "JobBrief",
    "JobRecord",
    "JobState",
    "NewJob",
    "OutboxEntry",
    "QueueLimits",
    "QueueOverview",
    "QueueStats",
    "RateWindow",
    "Retention",
    "ScheduleRecord",
    "WaitFacts",
    "WorkerInfo",
    "check_history_window",
]


class JobState(StrEnum):
    """Where a job is in its lifecycle (see DESIGN's state diagram)."""

    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: In a flow, waiting for its dependencies to finish (see :mod:`corral.flow`).
    BLOCKED = "blocked"

    @property
    def terminal(self) -> bool:
        """True for completed, failed and cancelled."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


#: Upper bounds (seconds) of the processing-time histogram kept per queue.
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Totals a queue has accumulated since it was created (for metrics).

    ``buckets[i]`` counts completions whose run took at most ``DURATION_BUCKETS[i]``
    seconds and more than the bound before; the last entry counts longer runs.
    """

    completed: int = 0
    failed: int = 0
    retried: int = 0
    duration_sum: float = 0.0
    buckets: tuple[int, ...] = (0,) * (len(DURATION_BUCKETS) + 1)


#: Widths (ms) of the time slots the outcome history is kept in, and how many of the
#: latest slots of each can be read: an hour of minutes, a day of fifteen minutes.
HISTORY_STEPS = {60_000: 60, 900_000: 96}


def check_history_window(step: int, count: int) -> None:
    """ValueError unless ``step`` is one of ``HISTORY_STEPS`` and ``count`` is between
    1 and the slots it keeps (what :meth:`Backend.history` accepts)."""
    if step not in HISTORY_STEPS:
        raise ValueError(f"history step must be one of {list(HISTORY_STEPS)} ms, got {step!r}")
    if not 1 <= count <= HISTORY_STEPS[step]:
        raise ValueError(
            f"history count must be between 1 and {HISTORY_STEPS[step]} slots of "
            f"{step} ms, got {count!r}"
        )


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """Outcome counts of some queues in consecutive time slots of ``step`` ms, the
    first starting at ``start`` (store ms) and the last holding the store's now.

    ``slots[queue][i]`` is ``(failed, *buckets)`` for slot ``i``: jobs that failed for
    good, then completions per duration bucket as in ``QueueStats.buckets``.
    """

    start: int
    step: int
    slots: dict[str, list[tuple[int, ...]]]


@dataclass(frozen=True, slots=True)
class QueueOverview:
    """One queue as a listing shows it: ``counts`` as :meth:`Backend.counts` returns
    them (per state, plus ``paused``) and ``stats`` as :meth:`Backend.stats`."""

    name: str
    counts: dict[str, int]
    stats: QueueStats


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """Flow control shared by every worker of a queue.

    ``max_active``: at most this many jobs of the queue run at once, across all
    workers. ``rate_max`` per ``rate_window`` seconds: at most that many jobs start in
    any window of that length. The ``group_*`` twins apply the same limits to each
    group (tenant) of the queue separately. Jobs over a limit wait; they never fail.
    """

    max_active: int | None = None
    rate_max: int | None = None
    rate_window: float | None = None
    group_max_active: int | None = None
    group_rate_max: int | None = None
    group_rate_window: float | None = None

    def stored(self) -> tuple[int | None, ...]:
        """As backends store them: max_active, rate_max, rate_ms, and the group twins."""

        def ms(window: float | None) -> int | None:
            return None if window is None else int(window * 1000)

        return (
            self.max_active,
            self.rate_max,
            ms(self.rate_window),
            self.group_max_active,
            self.group_rate_max,
            ms(self.group_rate_window),
        )

    @classmethod
    def from_stored(cls, values: Sequence[int | None]) -> QueueLimits:
        """The inverse of :meth:`stored`."""
        max_active, rate_max, rate_ms, gmax, grate, grate_ms = values
        return cls(
            max_active,
            rate_max,
            None if rate_ms is None else rate_ms / 1000,
            gmax,
            grate,
            None if grate_ms is None else grate_ms / 1000,
        )


@dataclass(frozen=True, slots=True)
class Retention:
    """How many finished jobs of one kind a queue keeps, and for how long.

    ``count=None`` keeps any number; ``max_age=None`` keeps them for ever (seconds).
    """

    count: int | None = None
    max_age: float | None = None


#: Keep every finished job (the default where a method takes a retention).
KEEP_ALL = Retention()


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job ready to be stored: everything already validated and encoded.

    ``data`` is the JSON text of ``[args, kwargs]``; ``options`` the JSON text of the
    per-job overrides (attempts, backoff, timeout) or ``b""`` when there are none.
    ``delay_ms`` is relative to the store's clock; ``run_at_ms`` (absolute) wins when set.

    ``group``: the tenant the job belongs to ("" = none); groups take turns.
    ``dedupe_key``: while the job holding this key counts (see ``dedupe_ms``), an add
    with the same key returns that job instead of storing a new one. ``dedupe_ms``:
    0 = the key is held until its job finishes; > 0 = for that long after the add.
    ``debounce_ms`` (with a key): the job waits that long, and an add with the same
    key before it starts replaces its name, data and options and restarts the wait.
    ``given_id``: the caller chose ``id`` (else it is random, new to the store).
    ``notify``: the outcomes (``completed,failed``...) that get an outbox entry in the
    step that ends the job (see :class:`OutboxEntry`); "" = none.
    """

    id: str
    name: str
    data: bytes
    priority: int = 0
    delay_ms: int = 0
    run_at_ms: int = 0
    options: bytes = b""
    group: str = ""
    dedupe_key: str = ""
    dedupe_ms: int = 0
    debounce_ms: int = 0
    given_id: bool = False
    notify: str = ""


class Enqueued(list[str | None]):
    """What ``Backend.enqueue`` returns: per job, None if created, else the id of the
    job that stands for it; ``stored_at_ms``, when the backend tells, is the store's
    clock when it created them (their ``created_at``), so that the caller can show a
    created job without reading it back."""

    stored_at_ms: int | None = None


# Not frozen: one is built per job on the hot path, and a frozen dataclass's
# __init__ costs about three times as much.
@dataclass(slots=True)
class ClaimedJob:
    """A job handed to a worker, with the lease token that fences its outcome."""

    id: str
    queue: str
    name: str
    data: bytes
    attempt: int
    token: str
    options: bytes
    stalls: int


@dataclass(slots=True)
class Completion:
    """A successful outcome to record: ``result`` is JSON text."""

    id: str
    token: str
    result: bytes
    #: Outcomes the worker knows to notify for this job ("" none; see NewJob.notify).
    notify: str = ""


@dataclass(frozen=True, slots=True)
class JobBrief:
    """A job's state, task name and attempts: what a listing of many jobs shows, read
    without the job's arguments, result, errors and logs."""

    state: JobState
    name: str
    attempts: int


@dataclass(slots=True)
class JobRecord:
    """Everything stored about one job, as read back from the backend."""

    id: str
    queue: str
    name: str
    state: JobState
    data: bytes
    priority: int = 0
    options: bytes = b""
    attempts: int = 0
    stalls: int = 0
    created_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    run_at: int | None = None
    progress: bytes | None = None
    result: bytes | None = None
    errors: list[bytes] = field(default_factory=list)
    logs: list[bytes] = field(default_factory=list)
    cancel_requested: bool = False
    group: str | None = None
    #: The id of the worker that claimed the latest attempt (None before the first).
    worker: str | None = None
    #: The dedupe key the job was added with, if any (kept after the key is released).
    dedupe_key: str | None = None
    #: The id of the flow the job belongs to (a spawned child: its parent's spawn id).
    flow: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A stored schedule: its definition (JSON text), the pending tick (None while
    paused) and the last tick fired, in store milliseconds."""

    name: str
    definition: bytes
    next_at: int | None
    last_at: int | None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker as it registered itself."""

    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: int
    last_seen: int
    active: int = 0
    processed: int = 0
    failed: int = 0
    #: Threads still running a sync job that timed out (they hold no job slot).
    stuck: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: The ``(queue, job_id)`` pairs it was running at its last heartbeat.
    jobs: list[tuple[str, str]] = field(default_factory=list)
    #: The Corral version it runs (None: a worker too old to say).
    version: str | None = None
    #: Child processes of isolated tasks alive at its last heartbeat (idle or busy).
    children: int = 0


#: How long an ended counter window stays readable (:meth:`Backend.read_counter`) at
#: least: a digest job that runs late (workers down, a busy queue) still reads its count.
COUNTER_KEPT_MS = 3_600_000

#: How far :meth:`Backend.wait_facts` counts the jobs ahead of one (see WaitFacts).
POSITION_BOUND = 100_000


@dataclass(frozen=True, slots=True)
class RateWindow:
    """A rate limit and its current window: ``count`` of at most ``max`` starts in the
    last ``window_ms``; ``resets_at`` (store ms) is when the oldest of them leaves the
    window (None when there is none)."""

    count: int
    max: int
    window_ms: int
    resets_at: int | None

    @property
    def full(self) -> bool:
        """No start left in this window."""
        return self.count >= self.max


@dataclass(frozen=True, slots=True)
class WaitFacts:
    """What may keep a job from starting, read in one atomic step
    (:meth:`Backend.wait_facts`); :func:`corral.blockers.blockers` words them.

    ``now`` is the store's clock (ms) at the read. ``active``/``max_active`` and
    ``rate`` are the queue's; the ``group_*`` twins those of the job's group (zero and
    None for an ungrouped job). ``workers``: live workers that serve the queue.
    ``position``: how many jobs would be claimed before this one (None unless it is
    waiting); exact for ungrouped jobs in a queue without groups, an estimate while
    groups take turns (limits may hold a group back).
    """

    queue: str
    job_id: str
    state: JobState
    now: int
    run_at: int | None
    attempts: int
    group: str | None
    paused: bool
    active: int
    max_active: int | None
    rate: RateWindow | None
    group_active: int
    group_max_active: int | None
    group_rate: RateWindow | None
    workers: int
    position: int | None
    #: ``position`` is :data:`POSITION_BOUND`: at least that many jobs are ahead (the
    #: count stops there, so that a read stays cheap behind a huge backlog).
    position_at_least: bool = False


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored audit entry: ``id`` (the store's, greater for newer entries), ``at``
    (store ms), who did it (``key``: an API key's name), ``action``, ``target`` (a
    queue, ``queue/job id``...) and ``detail`` (JSON text, ``b""`` for none)."""

    id: str
    at: int
    key: str
    action: str
    target: str
    detail: bytes


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A job's outcome as recorded, for its notifications: written in the same atomic
    step that ended the job (so a crash cannot lose it), kept until a relay acknowledges
    it with :meth:`Backend.ack_outbox`. Times are store ms; ``result`` and ``error``
    (the last error record) are JSON text; ``options`` the job's stored options.
    ``ref`` is the backend's handle for acknowledging it."""

    ref: bytes
    queue: str
    job_id: str
    event: str
    task: str
    attempt: int
    created_at: int | None
    started_at: int | None
    finished_at: int | None
    result: bytes | None
    error: bytes | None
    options: bytes
