"""Registering listeners, callbacks and worker hooks: bad ones are refused at once,
with a message naming what was wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corral import ConfigurationError, Corral, JobEvent, Lifecycle


@pytest.fixture
def app(tmp_path: Path) -> Corral:
    return Corral(f"sqlite:///{tmp_path / 'hooks.db'}")


def two_args(event: JobEvent, extra: int) -> None: ...


def test_a_non_callable_callback_is_refused(app: Corral) -> None:
    with pytest.raises(ConfigurationError, match=r"on_failed must be a function, got str"):
        app.on_failed("notify")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"on_completed must be a function, got int"):
        app.task(on_completed=3)  # type: ignore[arg-type]


def test_a_callback_of_the_wrong_arity_is_refused_by_name(app: Corral) -> None:
    with pytest.raises(
        ConfigurationError, match=r"on_failed callback 'two_args' must take exactly one"
    ):
        app.on_failed(two_args)
    with pytest.raises(ConfigurationError, match=r"on_retrying callback 'two_args'"):
        app.task(on_retrying=two_args)
    with pytest.raises(ConfigurationError, match=r"one argument \(the JobEvent\)"):
        app.on_completed(lambda: None)
    assert app.listeners == []  # nothing half-registered


def test_callbacks_with_defaults_or_varargs_are_accepted(app: Corral) -> None:
    def flexible(event: JobEvent, extra: int = 0) -> None: ...

    async def anything(*args: Any) -> None: ...

    assert app.on_completed(flexible) is flexible
    assert app.on_failed(anything) is anything
    assert [type(x).__name__ for x in app.listeners] == ["Callbacks"]


def test_worker_hooks_take_no_argument_or_the_state(app: Corral) -> None:
    def none() -> None: ...

    def state(state: dict[str, Any]) -> None: ...

    assert app.on_startup(none) is none
    assert app.on_shutdown(state) is state
    with pytest.raises(
        ConfigurationError, match=r"on_startup hook 'two_args' must take no argument or one"
    ):
        app.on_startup(two_args)
    with pytest.raises(ConfigurationError, match=r"on_shutdown must be a function, got NoneType"):
        app.on_shutdown(None)  # type: ignore[arg-type]
    assert app.startup_hooks == [none] and app.shutdown_hooks == [state]


def test_a_listener_must_be_a_lifecycle(app: Corral) -> None:
    class Plain:
        async def completed(self, event: JobEvent) -> None: ...

    with pytest.raises(ConfigurationError, match=r"Lifecycle subclass, got Plain"):
        app.add_listener(Plain())  # type: ignore[arg-type]

    class SyncMethod(Lifecycle):
        def completed(self, event: JobEvent) -> None:  # type: ignore[override]
            ...

    with pytest.raises(
        ConfigurationError, match=r"listener 'SyncMethod': completed\(\) must be an async"
    ):
        app.add_listener(SyncMethod())

    class NoTime(Lifecycle):
        timeout = 0

    with pytest.raises(ConfigurationError, match=r"listener 'NoTime': timeout must be seconds > 0"):
        app.add_listener(NoTime())
    assert app.listeners == []
