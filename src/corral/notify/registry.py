"""The app's side of notifications: which targets hear which jobs, and the system
tasks that deliver them. Mixed into :class:`~corral.app.Corral`.

Targets are attached app-wide (:meth:`NotifyRegistry.notify`), per task
(``@app.task(notify=[...])``) or per job (``task.options(notify=[...])``). A job's
enqueue records which outcomes any of its targets wants; the step that ends the job
then writes an outbox entry (see :class:`~corral.backends.base.OutboxEntry`), which a
worker's relay turns into one delivery job per target on ``corral.notify``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from corral.errors import ConfigurationError
from corral.notify.base import NotifySettings, Target

if TYPE_CHECKING:
    from corral.backends.base import Backend
    from corral.hooks import Lifecycle
    from corral.notify.deliver import EndpointState
    from corral.notify.relay import Relay
    from corral.task import Task

__all__ = ["DELIVER_TASK", "DIGEST_TASK", "NOTIFY_QUEUE", "NotifyRegistry", "check_targets"]

#: The system queue delivery jobs run on (every worker of an app with notifications
#: serves it too).
NOTIFY_QUEUE: Final = "corral.notify"
DELIVER_TASK: Final = "corral.deliver"
DIGEST_TASK: Final = "corral.digest"

#: Target classes by kind, for targets stored with a job (``Target.to_json``).
KINDS: dict[str, type[Target]] = {}


def _kinds() -> dict[str, type[Target]]:
    if not KINDS:
        from corral.notify.email import Email
        from corral.notify.webhook import Webhook

        KINDS.update({Webhook.kind: Webhook, Email.kind: Email})
    return KINDS


def check_targets(targets: object, what: str) -> tuple[Target, ...]:
    """``targets`` (a target or a list of them) as a tuple; ConfigurationError else."""
    if targets is None:
        return ()
    if isinstance(targets, Target):
        return (targets,)
    if isinstance(targets, str | bytes) or not isinstance(targets, Iterable):
        raise ConfigurationError(f"{what} must be a list of Webhook/Email targets, got {targets!r}")
    chosen = tuple(targets)
    for target in chosen:
        if not isinstance(target, Target):
            raise ConfigurationError(
                f"{what}: {target!r} is not a notification target (Webhook, Email)"
            )
    return chosen


def target_json(target: Target) -> dict[str, Any]:
    """A per-job target as stored in the job's options (kind included)."""
    return {"kind": target.kind, **target.to_json()}


def target_from_json(data: Mapping[str, Any]) -> Target:
    """Rebuild a stored target; ConfigurationError when its kind is unknown or it is invalid."""
    kind = data.get("kind")
    cls = _kinds().get(str(kind))
    if cls is None:
        raise ConfigurationError(f"unknown notification target kind {kind!r}")
    # Each kind's from_json checks the kind itself (Email's requires it).
    return cls.from_json(data)


class NotifyRegistry:
    """Targets and delivery settings registered on an app."""

    tasks: dict[str, Task[Any, Any]]

    def add_listener(self, listener: Lifecycle) -> Lifecycle:
        raise NotImplementedError

    def _init_notify(self, settings: NotifySettings | None) -> None:
        self._targets: list[Target] = []
        self._notify_settings: NotifySettings | None = None
        self._relay: Relay | None = None
        if settings is not None:
            if not isinstance(settings, NotifySettings):
                raise ConfigurationError(
                    f"notifications must be a corral.notify.NotifySettings, got {settings!r}"
                )
            self._enable_notify(settings)

    @property
    def notifications(self) -> NotifySettings | None:
        """How this app's workers deliver notifications; None while none is set up."""
        return self._notify_settings

    @property
    def targets(self) -> list[Target]:
        """The app-wide targets (every task's jobs)."""
        return list(self._targets)

    def notify(self, *targets: Target) -> None:
        """Send notifications about every job of this app to ``targets``
        (:class:`~corral.notify.Webhook`, :class:`~corral.notify.Email`), each for
        the outcomes in its ``events``. Delivered durably (see :mod:`corral.notify`)."""
        self._targets.extend(check_targets(targets, "notify()"))
        self._enable_notify()

    def _enable_notify(self, settings: NotifySettings | None = None) -> None:
        """Turn notifications on (once): the delivery tasks and the relay."""
        if settings is not None:
            self._notify_settings = settings
        if DELIVER_TASK in self.tasks:
            return
        if self._notify_settings is None:
            self._notify_settings = NotifySettings()
        from corral.notify.deliver import register_delivery
        from corral.notify.relay import Relay

        register_delivery(self)  # type: ignore[arg-type]
        self._relay = Relay(self)  # type: ignore[arg-type]
        self.add_listener(self._relay)

    def notify_events(self, task: Task[Any, Any], job_targets: Sequence[Target]) -> str:
        """The outcomes any target of a job of ``task`` wants, as the store keeps
        them (``"completed,failed"``; "" for none)."""
        if not (self._targets or task.targets or job_targets):
            return ""
        events: set[str] = set()
        for target in (*self._targets, *task.targets, *job_targets):
            events |= target.events
        return ",".join(sorted(events))

    async def backend(self) -> Backend:
        raise NotImplementedError

    async def notify_endpoints(self) -> list[EndpointState]:
        """Notification endpoints that are disabled (they answered 410) or failing."""
        from corral.notify.deliver import endpoint_states

        return await endpoint_states(await self.backend())

    async def enable_notify_endpoint(self, key: str) -> bool:
        """Deliver to a disabled endpoint again (its key as :meth:`notify_endpoints`
        gives it); False when Corral kept no state for it."""
        from corral.notify.deliver import set_endpoint_enabled

        return await set_endpoint_enabled(await self.backend(), key)

    def outbox_written(self) -> None:
        """A worker of this app recorded an outcome that may have an outbox entry: its
        relay looks at once instead of at its next round (no-op without notifications)."""
        if self._relay is not None:
            self._relay.wake()

    def registered_target(self, key: str) -> Target | None:
        """The app-wide or task target with this key, if any."""
        for target in self._targets:
            if target.key == key:
                return target
        for task in self.tasks.values():
            for target in task.targets:
                if target.key == key:
                    return target
        return None
