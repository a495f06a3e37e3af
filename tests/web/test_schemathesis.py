"""Property-based requests generated from the live server's OpenAPI document: no
request, however odd, gets a 5xx (schemathesis' ``not_a_server_error`` check).

Runs with an admin key (every route is reachable) and with unregistered task names
allowed, so generated enqueues succeed and later requests find data. The SSE routes
are left out (their streams do not end).

``schemathesis.pytest.from_fixture`` (the lazy loader a fixture-started server
needs) fails on this pytest with ``AttributeError: 'Function' object has no attribute
'_nodeid'`` (schemathesis 4.32.5 with pytest 9.2), so each operation's Hypothesis
strategy (``operation.as_strategy``) is driven directly instead, positive and negative.
"""

from __future__ import annotations

import math
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from tests.web.apps import build_app
from tests.web.conftest import ADMIN_KEY, API_KEYS, Serve, bearer

#: Examples per operation and generation mode. Operations with a query or a body get
#: more, and negative data too; those with path parameters only get a few positive
#: ones (negative data there is slow to draw, being over-long strings, and invalid
#: path parameters are covered by test_validation.py).
RICH = {GenerationMode.POSITIVE: 50, GenerationMode.NEGATIVE: 25}
PLAIN = {GenerationMode.POSITIVE: 20}

#: Long-polls are cut short: a generated ?timeout=60 on an existing job would block.
MAX_WAIT = 0.2


def _clamp_wait(case: schemathesis.Case) -> None:
    query: dict[str, Any] = case.query or {}
    timeout = query.get("timeout")
    try:
        value = float(timeout)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    if math.isnan(value) or value > MAX_WAIT:
        query["timeout"] = MAX_WAIT


def test_no_generated_request_gets_a_server_error(serve: Serve, url: str) -> None:
    server = serve(build_app(url), api_keys=API_KEYS, allow_unregistered=True)
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json").exclude(
        path_regex=r"/events$"
    )
    failures: dict[str, str] = {}
    labels: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            labels.append(operation.label)
            examples = RICH if len(operation.query) or len(operation.body) else PLAIN
            for mode, count in examples.items():

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=count,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                def run(case: schemathesis.Case) -> None:
                    _clamp_wait(case)
                    response = case.call(session=session, headers=bearer(ADMIN_KEY), timeout=10)
                    case.validate_response(response, checks=[not_a_server_error])

                try:
                    run()
                except FailureGroup as exc:  # record it, and go on with the other operations
                    failures[f"{operation.label} ({mode.value})"] = str(exc)
                except Unsatisfiable:
                    # Nothing to make invalid (no parameters, no body): negative mode
                    # has no cases for this operation.
                    assert mode is GenerationMode.NEGATIVE, operation.label
    assert len(labels) >= 16, labels
    assert not failures, "server errors:\n\n" + "\n\n".join(
        f"{label}: {detail}" for label, detail in failures.items()
    )
