"""The children an isolated task spawns cross from its child process as JSON
(:class:`corral.flow.SpawnedChildren`): every field of every job and edge survives."""

from __future__ import annotations

from corral.backends.flow_records import FlowEdge, FlowJob, OnFailure
from corral.backends.records import NewJob
from corral.errors import InvalidArguments, InvalidFlow, ValidationError
from corral.flow import SpawnedChildren


def test_jobs_and_edges_survive_the_crossing() -> None:
    full = NewJob(
        id="p.s0.1",
        name="t.x",
        data=b'[[null,"\\u00e9"],{"k":1}]',
        priority=5,
        delay_ms=0,
        run_at_ms=7,
        options=b'{"attempts":2}',
        group="tenant",
        dedupe_key="",
        dedupe_ms=0,
        debounce_ms=0,
        given_id=True,
        notify="completed,failed",
    )
    jobs = (
        FlowJob("q1", NewJob(id="p.s0.0", name="t.y", data=b"[[],{}]"), (), "y"),
        FlowJob("q2", full, (FlowEdge("y", "q1", "p.s0.0", OnFailure.SKIP, True),), "x"),
    )
    back = SpawnedChildren.decode(SpawnedChildren("p.s0", jobs).encode())
    assert back == SpawnedChildren("p.s0", jobs)
    assert back.error() is None


def test_a_refusal_keeps_its_type_where_it_is_a_validation_error() -> None:
    for name, kind in [
        ("InvalidFlow", InvalidFlow),
        ("InvalidArguments", InvalidArguments),
        ("CorralError", ValidationError),
        ("no_such_name", ValidationError),
    ]:
        spawned = SpawnedChildren.decode(SpawnedChildren("", invalid=(name, "why")).encode())
        error = spawned.error()
        assert type(error) is kind and str(error) == "why"
