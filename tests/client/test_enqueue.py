"""Enqueueing through the client API, on each backend (no worker)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from corral import (
    Corral,
    InvalidArguments,
    InvalidName,
    JobState,
    PayloadTooLarge,
    SerializationError,
    ValidationError,
)
from tests.client.conftest import EMPTY


def _register(app: Corral) -> object:
    @app.task(name="emails.send", queue="emails")
    async def send(to: str, subject: str, *, urgent: bool = False) -> None:
        return None

    return send


async def _nothing_stored(app: Corral, queue: str = "emails") -> None:
    assert await app.queue(queue).counts() == EMPTY
    assert await app.queues() == []


# -- rejected before anything is stored -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("a@b.c",), {}),  # missing subject
        (("a@b.c", "hi", "extra"), {}),  # too many
        (("a@b.c", "hi"), {"cc": "x"}),  # unknown keyword
        (("a@b.c", "hi", True), {}),  # keyword-only given positionally
        (("a@b.c",), {"to": "dup", "subject": "s"}),  # duplicate
    ],
)
async def test_wrong_arguments_raise_invalid_arguments_naming_the_task(
    app: Corral, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    send = _register(app)
    with pytest.raises(InvalidArguments, match=r"task 'emails\.send'"):
        await send.enqueue(*args, **kwargs)  # type: ignore[attr-defined]
    await _nothing_stored(app)


async def test_invalid_arguments_is_a_type_error_too(app: Corral) -> None:
    send = _register(app)
    with pytest.raises(TypeError):
        await send.enqueue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", [{1, 2}, object(), b"bytes", 2**70])
async def test_non_json_positional_argument_names_the_parameter(app: Corral, bad: object) -> None:
    send = _register(app)
    with pytest.raises(SerializationError, match="argument 'subject'"):
        await send.enqueue("a@b.c", bad)  # type: ignore[attr-defined]
    await _nothing_stored(app)


async def test_non_json_keyword_argument_names_the_parameter(app: Corral) -> None:
    send = _register(app)
    with pytest.raises(SerializationError, match="argument 'urgent'"):
        await send.enqueue("a@b.c", "hi", urgent=object())  # type: ignore[attr-defined]
    await _nothing_stored(app)


async def test_oversize_payload_is_refused(store_url: str) -> None:
    app = Corral(store_url, max_payload_bytes=1000)
    try:
        send = _register(app)
        with pytest.raises(PayloadTooLarge) as info:
            await send.enqueue("a@b.c", "x" * 2000)  # type: ignore[attr-defined]
        assert "largest: argument 'subject'" in str(info.value)
        assert "1,000 bytes" in str(info.value)
        await _nothing_stored(app)
        # just under the limit is fine
        job = await send.enqueue("a@b.c", "x" * 900)  # type: ignore[attr-defined]
        assert job.state is JobState.WAITING
    finally:
        await app.close()


@pytest.mark.parametrize("queue", ["", "has space", "-lead", "a/b", "x" * 101])
async def test_invalid_queue_name(app: Corral, queue: str) -> None:
    send = _register(app)
    with pytest.raises(InvalidName, match="queue name"):
        await send.options(queue=queue).enqueue("a@b.c", "hi")  # type: ignore[attr-defined]
    with pytest.raises(InvalidName, match="queue name"):
        await app.enqueue("emails.send", ["a@b.c", "hi"], queue=queue)
    await _nothing_stored(app)


@pytest.mark.parametrize("job_id", ["", "a b", "-x", "a/b", "x" * 201])
async def test_invalid_job_id(app: Corral, job_id: str) -> None:
    send = _register(app)
    with pytest.raises(InvalidName, match="job id"):
        await send.options(job_id=job_id).enqueue("a@b.c", "hi")  # type: ignore[attr-defined]
    with pytest.raises(InvalidName, match="job id"):
        await app.enqueue("emails.send", ["a@b.c", "hi"], job_id=job_id)
    await _nothing_stored(app)


@pytest.mark.parametrize("priority", [1001, -1001, 10**6])
async def test_priority_out_of_range(app: Corral, priority: int) -> None:
    send = _register(app)
    with pytest.raises(ValidationError, match="out of range"):
        await send.options(priority=priority).enqueue("a@b.c", "hi")  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="out of range"):
        await app.enqueue("emails.send", ["a@b.c", "hi"], priority=priority)
    await _nothing_stored(app)


async def test_bad_options_are_refused(app: Corral) -> None:
    send = _register(app)
    with pytest.raises(ValidationError, match="delay"):
        send.options(delay=-1)  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="timezone-aware"):
        send.options(delay=datetime(2030, 1, 1))  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="attempts"):
        send.options(attempts=0)  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="args must be a list"):
        await app.enqueue("emails.send", "a@b.c")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="kwargs must be an object"):
        await app.enqueue("emails.send", [], [("to", "x")])  # type: ignore[arg-type]
    await _nothing_stored(app)


async def test_one_bad_item_in_enqueue_many_stores_nothing(app: Corral) -> None:
    send = _register(app)
    items = [("a@b.c", f"s{i}") for i in range(10)] + [("a@b.c", {1})]
    with pytest.raises(SerializationError, match="argument 'subject'"):
        await send.enqueue_many(items)  # type: ignore[attr-defined]
    await _nothing_stored(app)


# -- what is stored ----------------------------------------------------------------------


async def test_enqueue_returns_a_readable_waiting_job(app: Corral) -> None:
    send = _register(app)
    job = await send.enqueue("a@b.c", "hi", urgent=True)  # type: ignore[attr-defined]
    assert job.queue == "emails"
    assert job.state is JobState.WAITING
    assert (job.args, job.kwargs) == (["a@b.c", "hi"], {"urgent": True})
    counts = await app.queue("emails").counts()
    assert counts["waiting"] == 1
    assert await app.queues() == ["emails"]


async def test_idempotent_job_id_returns_the_same_job(app: Corral) -> None:
    send = _register(app)
    first = await send.options(job_id="welcome-42").enqueue("a@b.c", "one")  # type: ignore[attr-defined]
    second = await send.options(job_id="welcome-42").enqueue("z@y.x", "two")  # type: ignore[attr-defined]
    third = await app.enqueue("emails.send", ["q@q.q", "three"], job_id="welcome-42")
    assert first.id == second.id == third.id == "welcome-42"
    # the existing job is untouched
    assert second.args == third.args == ["a@b.c", "one"]
    assert (await app.queue("emails").counts())["waiting"] == 1


async def test_enqueue_by_name_of_an_unregistered_task(app: Corral) -> None:
    job = await app.enqueue("billing.charge", [42], {"currency": "EUR"}, queue="billing")
    assert job.queue == "billing"
    await job.refresh()
    assert job.name == "billing.charge"
    assert (job.args, job.kwargs) == ([42], {"currency": "EUR"})
    assert (await app.queue("billing").counts())["waiting"] == 1
    assert (await app.queue("default").counts())["waiting"] == 0


async def test_enqueue_by_name_without_queue_goes_to_the_default_queue(app: Corral) -> None:
    job = await app.enqueue("billing.charge", [1])
    assert job.queue == app.default_queue == "default"
    assert (await app.queue("default").counts())["waiting"] == 1


async def test_enqueue_by_name_of_a_registered_task_checks_its_signature(app: Corral) -> None:
    _register(app)
    with pytest.raises(InvalidArguments, match=r"emails\.send"):
        await app.enqueue("emails.send", ["only-one"])
    job = await app.enqueue("emails.send", ["a@b.c", "hi"])
    assert job.queue == "emails"  # the task's queue, not the app default


async def test_enqueue_by_invalid_task_name(app: Corral) -> None:
    with pytest.raises(InvalidName, match="task name"):
        await app.enqueue("not a name")


async def test_enqueue_many_of_2000_items(app: Corral) -> None:
    @app.task(name="bulk.item", queue="bulk")
    async def item(n: int, tag: str = "") -> int:
        return n

    items: list[object] = [(n,) for n in range(1000)]
    items += [item.call(n, tag="t") for n in range(1000, 2000)]
    jobs = await item.enqueue_many(items)
    assert len(jobs) == 2000
    assert len({job.id for job in jobs}) == 2000
    assert [job.args[0] for job in jobs] == list(range(2000))
    assert jobs[1500].kwargs == {"tag": "t"}
    assert (await app.queue("bulk").counts())["waiting"] == 2000
    # FIFO: the waiting list is in enqueue order
    first = await app.queue("bulk").jobs("waiting", limit=5)
    assert [job.id for job in first] == [job.id for job in jobs[:5]]
    last = await app.queue("bulk").jobs("waiting", offset=1995, limit=10)
    assert [job.id for job in last] == [job.id for job in jobs[1995:]]


async def test_app_enqueue_many_groups_by_queue(app: Corral) -> None:
    @app.task(name="a.one", queue="qa")
    async def one(n: int) -> None: ...

    @app.task(name="b.two", queue="qb")
    async def two(n: int) -> None: ...

    jobs = await app.enqueue_many(
        [one.call(1), two.call(2), one.options(queue="qc").call(3), two.call(4)]
    )
    assert [job.queue for job in jobs] == ["qa", "qb", "qc", "qb"]
    assert [job.args for job in jobs] == [[1], [2], [3], [4]]
    assert sorted(await app.queues()) == ["qa", "qb", "qc"]


async def test_delayed_enqueue(app: Corral) -> None:
    send = _register(app)
    job = await send.options(delay=timedelta(minutes=5)).enqueue("a@b.c", "later")  # type: ignore[attr-defined]
    assert job.state is JobState.DELAYED
    await job.refresh()
    assert job.state is JobState.DELAYED
    assert job.run_at is not None
    assert job.run_at - datetime.now(UTC) > timedelta(minutes=4)
    assert (await app.queue("emails").counts())["delayed"] == 1
    assert await job.promote() is True
    await job.refresh()
    assert job.state is JobState.WAITING


async def test_delay_as_past_datetime_is_waiting(app: Corral) -> None:
    send = _register(app)
    when = datetime.now(UTC) - timedelta(hours=1)
    job = await send.options(delay=when).enqueue("a@b.c", "now")  # type: ignore[attr-defined]
    await job.refresh()
    assert job.state is JobState.WAITING


async def test_per_job_options_are_stored_for_the_worker(app: Corral) -> None:
    send = _register(app)
    job = await send.options(priority=7, attempts=9, timeout=3).enqueue("a@b.c", "hi")  # type: ignore[attr-defined]
    await job.refresh()
    assert job.priority == 7
    record = await (await app.backend()).get("emails", job.id)
    assert record is not None
    assert b'"attempts":9' in record.options


async def test_random_job_ids_are_unique(app: Corral) -> None:
    send = _register(app)
    ids = {(await send.enqueue("a@b.c", str(i))).id for i in range(20)}  # type: ignore[attr-defined]
    assert len(ids) == 20
    assert all(re.fullmatch(r"[0-9a-f]{26}", i) for i in ids)


async def test_plain_positional_task_checks_its_arity(app: Corral) -> None:
    # Tasks whose parameters are all plain and required skip Signature.bind when the
    # count fits; every other call still gets the full check.
    @app.task(name="plain.add", queue="plain")
    async def add(a: int, b: int) -> int:
        return a + b

    for args, kwargs in [((1,), {}), ((1, 2, 3), {}), ((1,), {"c": 2}), ((1, 2), {"a": 1})]:
        with pytest.raises(InvalidArguments, match=r"plain\.add"):
            await add.enqueue(*args, **kwargs)  # type: ignore[arg-type]
    await add.enqueue(1, 2)
    await add.enqueue(1, b=2)
    assert (await app.queue("plain").counts())["waiting"] == 2


def test_generated_job_ids_are_26_random_hex_digits() -> None:
    from corral.task import new_job_id

    ids = {new_job_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[0-9a-f]{26}", job_id) for job_id in ids)
    # Every digit position varies (no fixed version nibble, as a UUID has).
    assert all(len({job_id[i] for job_id in ids}) == 16 for i in range(26))
