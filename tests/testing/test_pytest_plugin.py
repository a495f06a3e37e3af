"""corral.testing.pytest_plugin: a user's test suite, generated and run with pytester."""

from __future__ import annotations

import pytest
import redis

pytest_plugins = ["pytester"]

#: The user's tasks module: its app points at a production store that must never be used.
USER_APP = """
from corral import Corral

app = Corral("sqlite:///production-never-touched.db")


@app.task(queue="emails")
def send(to: str) -> str:
    return to.upper()


@app.task(queue="emails", attempts=1)
async def explode() -> None:
    raise LookupError("no such customer")
"""

USER_TESTS = """
import pytest

from corral.testing import assert_enqueued, assert_not_enqueued, inline, run_until_idle_sync
from myapp import app, explode, send

SEEN = {}


def test_borrowed_app_on_the_tests_store(corral_app, corral_url):
    assert corral_app(app) is app
    assert app.url == corral_url and app.prefix.startswith("corral-test-")
    SEEN["url"] = corral_url
    send.enqueue_sync("a@b.c")
    assert_enqueued(app, send, ["a@b.c"])
    run_until_idle_sync(app)
    assert_not_enqueued(app, send)


def test_each_test_starts_with_an_empty_store(corral_app, corral_url):
    fresh = corral_app()
    assert corral_url != SEEN["url"] or "redis" in corral_url
    assert fresh.queue("emails").counts_sync()["completed"] == 0
    assert_not_enqueued(corral_app(app), send)


def test_a_jobs_exception_reaches_the_test(corral_app):
    corral_app(app)
    explode.enqueue_sync()
    with pytest.raises(LookupError, match="no such customer"):
        run_until_idle_sync(app)


@pytest.mark.asyncio
async def test_async_tests_use_it_too(corral_app):
    corral_app(app)
    with inline(app):
        job = await send.enqueue("x@y.z")
    assert job.return_value == "X@Y.Z"
    assert_enqueued(app, send, ["x@y.z"], states=["completed"])


def test_z_the_app_is_its_own_again_after_the_tests():
    assert app.url == "sqlite:///production-never-touched.db" and app.prefix == "corral"
    assert not app._backends
"""


#: Warnings are errors in the user's run (an unclosed connection would fail it); "-p"
#: loads the plugin where Corral's entry point is not installed, and where it is, the
#: outer run has imported the module already (pytest warns that it cannot rewrite it).
STRICT = ("-p", "corral.testing.pytest_plugin", "-W", "error")
STRICT += ("-W", "ignore::pytest.PytestAssertRewriteWarning")


@pytest.fixture
def user_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(myapp=USER_APP, test_user=USER_TESTS)
    pytester.syspathinsert()
    return pytester


def test_the_fixtures_give_each_test_its_own_sqlite_store(user_suite: pytest.Pytester) -> None:
    # Listed the way a user would (the entry point loads the same module under the
    # same name, so both at once are fine).
    user_suite.makeconftest('pytest_plugins = ["corral.testing.pytest_plugin"]\n')
    result = user_suite.runpytest(*STRICT)
    result.assert_outcomes(passed=5)
    assert not (user_suite.path / "production-never-touched.db").exists()


def test_with_a_redis_url_each_test_has_a_prefix_and_its_keys_are_deleted(
    user_suite: pytest.Pytester, redis_url: str
) -> None:
    result = user_suite.runpytest(*STRICT, "--corral-url", redis_url)
    result.assert_outcomes(passed=5)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.keys("corral-test-*") == []
    finally:
        client.close()


def test_a_failing_user_test_still_fails(user_suite: pytest.Pytester) -> None:
    user_suite.makepyfile(
        test_wrong="""
from corral.testing import assert_enqueued
from myapp import app, send

def test_wrong_args(corral_app):
    corral_app(app)
    send.enqueue_sync("a@b.c")
    assert_enqueued(app, send, ["nobody@b.c"])
"""
    )
    result = user_suite.runpytest("-p", "corral.testing.pytest_plugin", "test_wrong.py")
    result.assert_outcomes(failed=1)
    # ("?" for the brackets, which fnmatch reads as a set)
    result.stdout.fnmatch_lines(["*enqueued instead:*", "*myapp.send(args=?'a@b.c'?*"])
    # The helper's own frames are hidden: the test's line is the last one shown.
    assert "def assert_enqueued(" not in result.stdout.str()
