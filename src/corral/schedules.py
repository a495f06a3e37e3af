"""Cron and interval schedules: definitions, tick arithmetic and ``app.schedules``.

A schedule lives in the store, in its queue; every worker serving that queue may
fire a due tick, through one atomic compare-and-set on the tick (the backend's
``fire_schedule``), so each tick yields exactly one job however many workers run
and a tick is never lost between "enqueue" and "advance".

Rules: cron expressions are evaluated in the schedule's time zone (``tz``) with
cronsim: a daily time that falls in the spring-forward gap fires once, at the end
of the gap; one that occurs twice in the autumn fires once, the first time.
Intervals (``every``) are aligned to the Unix epoch, so all processes agree on the
ticks. Misfires (no worker was running): a tick at most ``MISFIRE_GRACE`` late still
fires, once; one later than that is skipped, unless the schedule has
``catch_up=True``, which runs one job for the latest missed tick. Either way the
schedule then continues from the first tick after now (never a burst of old ticks).
"""

from __future__ import annotations

import builtins
import math
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from cronsim import CronSim, CronSimError

from corral._sync import run_sync
from corral.backends.base import NewJob
from corral.errors import ConfigurationError, InvalidName, JobNotFound
from corral.notify.registry import check_targets, target_from_json, target_json
from corral.policy import check_queue_name, check_task_name

if TYPE_CHECKING:
    from corral.app import Corral
    from corral.job import Job
    from corral.notify.base import Target

__all__ = [
    "CRON_ALIASES",
    "MISFIRE_GRACE",
    "Schedule",
    "ScheduleSpec",
    "Schedules",
    "cron_fields",
    "next_tick",
]

#: How late (seconds) a tick may fire before it counts as missed.
MISFIRE_GRACE = 60.0

#: The usual cron aliases, as the 5-field expressions they stand for.
CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def cron_fields(expression: str) -> str:
    """The 5-field form of a cron expression (aliases like ``@daily`` expanded);
    raises ConfigurationError for ``@reboot`` and unknown aliases."""
    if not expression.startswith("@"):
        return expression
    alias = expression.strip().lower()
    if alias == "@reboot":
        raise ConfigurationError(
            "@reboot is not supported: schedules fire at times, not at worker starts "
            "(run start-up work from your deployment instead)"
        )
    if alias not in CRON_ALIASES:
        raise ConfigurationError(
            f"unknown cron alias {expression!r}; use one of {', '.join(CRON_ALIASES)}"
        )
    return CRON_ALIASES[alias]


def _check_name(name: object) -> str:
    # Schedule names end up in job ids ("<name>@<tick>"): the task-name alphabet.
    try:
        return check_task_name(name)
    except InvalidName as exc:
        raise InvalidName(str(exc).replace("task name", "schedule name")) from None


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What to enqueue and when. Exactly one of ``cron`` and ``every`` (seconds)."""

    name: str
    task: str
    queue: str
    cron: str | None = None
    every: float | None = None
    tz: str = "UTC"
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    catch_up: bool = False
    paused: bool = False
    #: Notification targets for each job it enqueues, as stored (``target_json``).
    notify: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"schedule {self.name!r}"
        _check_name(self.name)
        check_task_name(self.task)
        check_queue_name(self.queue)
        if (self.cron is None) == (self.every is None):
            raise ConfigurationError(f"{where}: give exactly one of cron= and every=")
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(f"{where}: unknown time zone {self.tz!r}") from None
        if self.cron is not None:
            try:
                CronSim(cron_fields(self.cron), datetime.now(zone))
            except ConfigurationError as exc:
                raise ConfigurationError(f"{where}: {exc}") from None
            except CronSimError as exc:
                raise ConfigurationError(
                    f"{where}: invalid cron expression {self.cron!r}: {exc}"
                ) from None
        elif not (isinstance(self.every, int | float) and math.isfinite(self.every)) or (
            self.every < 0.1
        ):
            raise ConfigurationError(f"{where}: every= must be at least 0.1 seconds")

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes) -> ScheduleSpec:
        return cls(**orjson.loads(data))

    def job_id(self, tick: int) -> str:
        return f"{self.name}@{tick}"

    def targets(self) -> tuple[Target, ...]:
        """The per-job notification targets its jobs carry."""
        return tuple(target_from_json(data) for data in self.notify)


def next_tick(spec: ScheduleSpec, after_ms: int) -> int:
    """The first tick strictly after ``after_ms`` (milliseconds since the epoch)."""
    if spec.every is not None:
        step = round(spec.every * 1000)
        return (after_ms // step + 1) * step
    assert spec.cron is not None
    zone = ZoneInfo(spec.tz)
    start = datetime.fromtimestamp(after_ms / 1000, tz=zone)
    return int(next(CronSim(cron_fields(spec.cron), start)).timestamp() * 1000)


def last_tick_at_or_before(spec: ScheduleSpec, first: int, now: int) -> int:
    """The latest tick in ``[first, now]`` (``first`` is a tick <= now)."""
    if spec.every is not None:
        step = round(spec.every * 1000)
        return max(first, now // step * step)
    tick = first
    for _ in range(100_000):
        following = next_tick(spec, tick)
        if following > now:
            break
        tick = following
    return tick


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as stored, with its pending and last ticks."""

    spec: ScheduleSpec
    next_run_at: datetime | None
    last_run_at: datetime | None

    @property
    def name(self) -> str:
        return self.spec.name

    def to_dict(self) -> dict[str, Any]:
        # Webhook secrets stay in the store: listings show that there is one.
        notify = [
            {k: ("***" if k == "secret" else v) for k, v in target.items()}
            for target in self.spec.notify
        ]
        return {
            **asdict(self.spec),
            "notify": notify,
            "next_run_at": self.next_run_at.isoformat() if self.next_run_at else None,
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
        }


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


class Schedules:
    """``app.schedules``: create, list, pause, resume, run now and remove schedules at
    run time."""

    def __init__(self, app: Corral) -> None:
        self._app = app

    async def add(
        self,
        name: str,
        task: str,
        *,
        cron: str | None = None,
        every: float | timedelta | None = None,
        tz: str = "UTC",
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        queue: str | None = None,
        catch_up: bool = False,
        notify: Target | Sequence[Target] | None = None,
    ) -> Schedule:
        """Create (or replace) a schedule that enqueues ``task(*args, **kwargs)``.

        ``cron`` is a 5-field expression (or ``@daily``, ``@hourly``... see
        :data:`CRON_ALIASES`) evaluated in ``tz``; ``every`` an interval.
        The arguments are checked against the task's signature when it is registered
        here. ``notify``: targets (:class:`~corral.notify.Email`,
        :class:`~corral.notify.Webhook`) every job of this schedule carries, as with
        ``task.options(notify=...)`` (e.g. one tenant's report recipients; stored with
        the schedule, secrets included). Raises ConfigurationError naming what is wrong.
        """
        seconds = every.total_seconds() if isinstance(every, timedelta) else every
        # options() checks the targets, and that this app delivers notifications.
        target = self._app._task_for(task, queue).options(notify=notify)
        spec = ScheduleSpec(
            name=name,
            task=task,
            queue=target.queue,
            cron=cron,
            every=seconds,
            tz=tz,
            args=list(args),
            kwargs=dict(kwargs or {}),
            catch_up=catch_up,
            notify=_stored_targets(notify),
        )
        target.prepare(spec.args, spec.kwargs)  # arguments fit and are JSON
        backend = await self._app.backend()
        next_at = next_tick(spec, await backend.time_ms())
        await backend.upsert_schedule(spec.queue, name, spec.to_json(), next_at, keep=False)
        return Schedule(spec, _dt(next_at), None)

    async def list(self) -> list[Schedule]:
        """Every schedule of every queue."""
        backend = await self._app.backend()
        found: list[Schedule] = []
        for queue in await backend.queues():
            for record in await backend.schedules(queue):
                spec = ScheduleSpec.from_json(record.definition)
                found.append(Schedule(spec, _dt(record.next_at), _dt(record.last_at)))
        return sorted(found, key=lambda s: s.name)

    async def get(self, name: str) -> Schedule:
        """One schedule by name; raises JobNotFound."""
        for schedule in await self.list():
            if schedule.name == name:
                return schedule
        raise JobNotFound(f"no schedule named {name!r}")

    async def pause(self, name: str) -> Schedule:
        """Stop firing until resumed (ticks in between are skipped)."""
        return await self._set_paused(name, True)

    async def resume(self, name: str) -> Schedule:
        """Fire again from the next tick after now."""
        return await self._set_paused(name, False)

    async def _set_paused(self, name: str, paused: bool) -> Schedule:
        current = await self.get(name)
        spec = replace(current.spec, paused=paused)
        backend = await self._app.backend()
        next_at = None if paused else next_tick(spec, await backend.time_ms())
        await backend.upsert_schedule(spec.queue, name, spec.to_json(), next_at, keep=False)
        return Schedule(spec, _dt(next_at), current.last_run_at)

    async def run_now(self, name: str) -> Job:
        """Enqueue the schedule's job now, paused or not, leaving its ticks alone (the
        next one still fires when due). The job id is ``<name>@now-<ms>-<random>``, so
        it names the schedule and never stands in for a tick's job. Raises JobNotFound
        for an unknown schedule; the arguments are checked like any enqueue."""
        spec = (await self.get(name)).spec
        backend = await self._app.backend()
        job_id = f"{spec.name}@now-{await backend.time_ms()}-{secrets.token_hex(3)}"
        task = self._app._task_for(spec.task, spec.queue).options(
            job_id=job_id, notify=spec.targets()
        )
        queue, new = task.prepare(spec.args, spec.kwargs)
        return (await self._app.submit(queue, [new]))[0]

    async def remove(self, name: str) -> bool:
        """Delete a schedule (jobs it already enqueued are not touched)."""
        try:
            spec = (await self.get(name)).spec
        except JobNotFound:
            return False
        backend = await self._app.backend()
        return await backend.remove_schedule(spec.queue, name)

    def add_sync(self, name: str, task: str, **options: Any) -> Schedule:
        """Blocking twin of :meth:`add`."""
        return run_sync(self.add(name, task, **options))

    def list_sync(self) -> builtins.list[Schedule]:
        """Blocking twin of :meth:`list`."""
        return run_sync(self.list())

    def get_sync(self, name: str) -> Schedule:
        """Blocking twin of :meth:`get`."""
        return run_sync(self.get(name))

    def pause_sync(self, name: str) -> Schedule:
        """Blocking twin of :meth:`pause`."""
        return run_sync(self.pause(name))

    def resume_sync(self, name: str) -> Schedule:
        """Blocking twin of :meth:`resume`."""
        return run_sync(self.resume(name))

    def run_now_sync(self, name: str) -> Job:
        """Blocking twin of :meth:`run_now`."""
        return run_sync(self.run_now(name))

    def remove_sync(self, name: str) -> bool:
        """Blocking twin of :meth:`remove`."""
        return run_sync(self.remove(name))


def tick_job(app: Corral, spec: ScheduleSpec, tick: int) -> NewJob:
    """The job a tick enqueues (its id names the schedule and the tick)."""
    task = app._task_for(spec.task, spec.queue).options(
        job_id=spec.job_id(tick), notify=spec.targets()
    )
    return task.prepare(spec.args, spec.kwargs)[1]


def _stored_targets(notify: Target | Sequence[Target] | None) -> list[dict[str, Any]]:
    return [target_json(target) for target in check_targets(notify, "notify")]
