"""The system tasks that deliver notifications, on ``corral.notify``.

``corral.deliver`` sends one notice to one target. Its failures are retried on
``NotifySettings.retries`` (then the job is dead-lettered, visible and retryable like
any job); a target that cannot take it now or ever (an SMTP 5xx, a refused address)
fails at once, and an endpoint that answered 410 is disabled: later deliveries to it
fail at once until it is enabled again. Failure emails are limited per task and
target (``failure_limit`` per ``failure_window``); the surplus is counted and
``corral.digest`` sends one summary when the window ends.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson

from corral.backends.base import Backend, Retention
from corral.errors import ConfigurationError, NoRetry
from corral.notify.base import DeliveryError, Notice, NotifySettings, Target
from corral.notify.registry import (
    DELIVER_TASK,
    DIGEST_TASK,
    NOTIFY_QUEUE,
    target_from_json,
    target_json,
)

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["EndpointState", "endpoint_states", "register_delivery", "set_endpoint_enabled"]

log = logging.getLogger("corral.notify")

#: Delivered notifications are kept a day (their ids dedupe a second relay meanwhile).
DELIVERED = Retention(count=100_000, max_age=timedelta(days=1).total_seconds())


@dataclass(frozen=True, slots=True)
class EndpointState:
    """What Corral knows of a notification endpoint: ``disabled`` (it answered 410, or
    was disabled by hand) or ``failing`` (its last delivery failed), with the reason."""

    key: str
    label: str
    disabled: bool
    failing: bool
    reason: str
    at: float


def _state(key: str, raw: bytes) -> EndpointState:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = {}
    return EndpointState(
        key=key,
        label=str(data.get("label", key)),
        disabled=bool(data.get("disabled")),
        failing=bool(data.get("failing")),
        reason=str(data.get("reason", "")),
        at=float(data.get("at", 0)),
    )


async def endpoint_states(backend: Backend) -> list[EndpointState]:
    """Every endpoint that is disabled or failing, by key."""
    return [_state(k, v) for k, v in sorted((await backend.endpoints()).items())]


async def set_endpoint_enabled(backend: Backend, key: str) -> bool:
    """Enable a disabled endpoint again (forget its state); False if none was kept."""
    if key not in await backend.endpoints():
        return False
    await backend.set_endpoint(key, None)
    return True


async def _note(backend: Backend, target: Target, **state: Any) -> None:
    state.update(label=target.label, at=time.time())
    await backend.set_endpoint(target.key, orjson.dumps(state))


def _target(app: Corral, ref: dict[str, Any]) -> Target:
    if "ref" in ref:
        target = app.registered_target(str(ref["ref"]))
        if target is None:
            raise NoRetry(
                f"notification target {ref['ref']!r} is no longer configured in this app "
                "(removed or changed since the job ended)"
            )
        return target
    try:
        return target_from_json(ref.get("target") or {})
    except ConfigurationError as exc:
        raise NoRetry(f"the job's notification target is unusable: {exc}") from None


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


class Deliveries:
    """The bodies of ``corral.deliver`` and ``corral.digest`` for one app."""

    def __init__(self, app: Corral) -> None:
        self.app = app

    @property
    def settings(self) -> NotifySettings:
        assert self.app.notifications is not None
        return self.app.notifications

    def backoff(self, retry: int, error: BaseException) -> float:
        """The wait before retry number ``retry``: ``NotifySettings.retries``."""
        waits = self.settings.retries or (0.0,)
        return waits[min(retry, len(waits)) - 1]

    async def deliver(self, notice: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
        """Send one notice to one target (see the module docstring)."""
        chosen = _target(self.app, target)
        sent = Notice.from_json(notice)
        backend = await self.app.backend()
        raw = (await backend.endpoints()).get(chosen.key)
        state = _state(chosen.key, raw) if raw is not None else None
        if state is not None and state.disabled:
            raise NoRetry(
                f"endpoint {chosen.label} is disabled ({state.reason}); enable it with "
                f"`corral notify enable {chosen.key}`"
            )
        folds = sent.event == "failed" and chosen.kind == "email"
        if folds and await _folded(self.app, backend, chosen, sent):
            return {"target": chosen.key, "folded": True}
        try:
            await chosen.deliver(sent, self.settings)
        except DeliveryError as exc:
            if exc.gone:
                await _note(backend, chosen, disabled=True, reason=str(exc))
                raise NoRetry(f"{exc}; endpoint {chosen.label} is now disabled") from None
            await _note(backend, chosen, failing=True, reason=str(exc))
            if not exc.retry:
                raise NoRetry(str(exc)) from None
            raise
        if state is not None and state.failing:
            await backend.set_endpoint(chosen.key, None)
        return {"target": chosen.key, "delivered": True}

    async def digest(
        self, task: str, target: dict[str, Any], counter: str, window_end: int
    ) -> dict[str, Any]:
        """One email for the failures folded in one window (none if none were)."""
        chosen = _target(self.app, target)
        backend = await self.app.backend()
        folded = await backend.read_counter(counter, window_end) - self.settings.failure_limit
        if folded <= 0:
            return {"folded": 0}
        send = getattr(chosen, "send_digest", None)
        if send is None:
            raise NoRetry(f"target {chosen.label} cannot send digests")
        window = _minutes(self.settings.failure_window)
        subject = f"{folded} more failures of {task} in the last {window}"
        text = (
            f"{folded} more jobs of {task} failed in the last {window}, beyond the "
            f"{self.settings.failure_limit} failure emails sent for that time.\n"
        )
        dashboard = self.settings.context.get("dashboard_url")
        if dashboard:
            text += f"\nSee them: {str(dashboard).rstrip('/')}/\n"
        try:
            await send(subject, text, self.settings, message_id_token=f"digest.{window_end}")
        except DeliveryError as exc:
            if not exc.retry:
                raise NoRetry(str(exc)) from None
            raise
        return {"folded": folded}


def register_delivery(app: Corral) -> None:
    """Register ``corral.deliver`` and ``corral.digest`` on ``app``."""
    bodies = Deliveries(app)
    attempts = len(bodies.settings.retries) + 1
    for name, fn in ((DELIVER_TASK, bodies.deliver), (DIGEST_TASK, bodies.digest)):
        app.task(
            name=name,
            queue=NOTIFY_QUEUE,
            attempts=attempts,
            backoff=bodies.backoff,
            completed=DELIVERED,
        )(fn)


async def _folded(app: Corral, backend: Backend, target: Target, notice: Notice) -> bool:
    """Count a failure email; True when it is over the limit (folded into a digest,
    which the first one over schedules for the window's end)."""
    settings = app.notifications
    assert settings is not None
    window_ms = max(1, int(settings.failure_window * 1000))
    counter = f"failures:{notice.task}:{target.key}"
    count, window_end = await backend.bump_counter(counter, window_ms)
    if count <= settings.failure_limit:
        return False
    if count == settings.failure_limit + 1:
        ref: dict[str, Any] = {"ref": target.key}
        if app.registered_target(target.key) is None:
            ref = {"target": target_json(target)}
        digest = app.tasks[DIGEST_TASK].options(
            job_id=f"digest.{window_end}.{counter.replace(':', '.')}"[:200],
            delay=max(0.0, (window_end - await backend.time_ms()) / 1000),
        )
        await digest.enqueue(notice.task, ref, counter, window_end)
    log.info("failure email for job %s folded into the digest", notice.job_id)
    return True
