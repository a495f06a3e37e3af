"""Schemathesis hooks for test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

Long-polls are cut short: a generated ``?timeout=60`` (or the default 30 s) on a job
that never finishes would only make the run wait. Nothing else is changed.
"""

from __future__ import annotations

from typing import Any

import schemathesis

MAX_WAIT = 0.2


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    if case.path.endswith("/result"):
        case.query = {**(case.query or {}), "timeout": MAX_WAIT}
