"""The inner loop's browser smoke tests (conftest.SMOKE) name browser tests that exist,
one page family (module) at least each: a renamed test would otherwise drop its page
from the inner loop without a word."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from tests.web.dashboard.conftest import SMOKE

BROWSER_FIXTURES = {"browser", "page", "pages"}


def browser_tests(module_file: str) -> set[str]:
    module = importlib.import_module(f"tests.web.dashboard.{module_file.removesuffix('.py')}")
    return {
        name
        for name, test in vars(module).items()
        if name.startswith("test_")
        and callable(test)
        and BROWSER_FIXTURES & set(inspect.signature(test).parameters)
    }


def test_each_page_family_has_a_smoke_test_that_exists() -> None:
    modules = sorted(p.name for p in Path(__file__).parent.glob("test_*.py"))
    with_browser = {m: browser_tests(m) for m in modules}
    smoke = [name.split("::") for name in SMOKE]
    for module_file, function in smoke:
        assert function in with_browser.get(module_file, set()), f"{module_file}::{function}"
    families = {m for m, tests in with_browser.items() if tests}
    assert families == {module_file for module_file, _ in smoke}
