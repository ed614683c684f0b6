"""Task validation and the status machine."""

from __future__ import annotations

import pytest

from workhorse.domain.ids import new_ids
from workhorse.domain.task import (
    CodeDefaults,
    TaskOptions,
    TaskStatus,
    build_task,
    build_tasks,
    can_move,
    decode_python_payload,
    python_payload,
)
from workhorse.errors import InvalidInput, PayloadTooLarge

CODE = CodeDefaults(
    name="resize", kind="python", priority=1, timeout=60, retries=2, retries_delay=5
)


def build(payload: str = "", **options: object):  # type: ignore[no-untyped-def]
    return build_task(
        task_id="t1",
        project_id="p",
        code=CODE,
        payload=payload,
        options=TaskOptions(**options),  # type: ignore[arg-type]
        max_payload_bytes=100,
    )


def test_code_defaults_fill_unset_options() -> None:
    task = build()
    assert (task.priority, task.timeout, task.retries, task.retries_delay) == (
        1,
        60,
        2,
        5,
    )


def test_options_override_code_defaults() -> None:
    task = build(priority=2, timeout=5, retries=0, delay=30, label="x")
    assert (task.priority, task.timeout, task.retries, task.delay, task.label) == (
        2,
        5,
        0,
        30.0,
        "x",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"priority": 3}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"delay": -1}, "delay"),
        ({"delay": 8 * 24 * 3600}, "delay"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"retries": 101}, "retries"),
        ({"label": "x" * 300}, "label"),
        ({"cluster": ""}, "cluster"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        build(**options)


def many(payloads: list[object], **options: object):  # type: ignore[no-untyped-def]
    return build_tasks(
        ids=[f"t{i}" for i in range(len(payloads))],
        project_id="p",
        code=CODE,
        payloads=payloads,  # type: ignore[arg-type]
        options=TaskOptions(**options),  # type: ignore[arg-type]
        max_payload_bytes=100,
    )


def test_a_batch_shares_its_options_and_keeps_each_payload() -> None:
    tasks = many(["a", "b", "c"], priority=2, label="x")
    assert [(t.id, t.payload) for t in tasks] == [("t0", "a"), ("t1", "b"), ("t2", "c")]
    assert {(t.priority, t.label, t.timeout, t.code_name) for t in tasks} == {
        (2, "x", 60, "resize")
    }


@pytest.mark.parametrize(
    ("payloads", "error"),
    [
        (["ok", "x" * 101], PayloadTooLarge),
        (["ok", "ok", 42], InvalidInput),
        (["x" * 101, "ok"], PayloadTooLarge),
    ],
)
def test_every_payload_of_a_batch_is_checked(
    payloads: list[object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        many(payloads)


def test_a_batch_with_bad_options_is_refused() -> None:
    with pytest.raises(InvalidInput, match="priority"):
        many(["a", "b"], priority=7)


def test_payload_over_the_limit_is_refused() -> None:
    with pytest.raises(PayloadTooLarge, match="101 bytes"):
        build("x" * 101)


def test_payload_limit_counts_utf8_bytes() -> None:
    with pytest.raises(PayloadTooLarge):
        build("é" * 51)


@pytest.mark.parametrize(
    ("payload", "fits"),
    [
        ("x" * 100, True),
        ("é" * 50, True),  # 100 bytes
        ("é" * 50 + "x", False),  # 101 bytes in 51 characters
        ("😀" * 25, True),  # 4 bytes each: exactly the limit
        ("😀" * 25 + "x", False),
    ],
)
def test_payload_limit_is_exact_for_multibyte_text(payload: str, fits: bool) -> None:
    if fits:
        assert build(payload).payload == payload
    else:
        with pytest.raises(PayloadTooLarge):
            build(payload)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ("a\x00b", "NUL characters"),
        ("é\x00", "NUL characters"),
        ("half a pair: \ud800", "not valid Unicode"),
    ],
)
def test_payload_that_no_backend_can_store_is_refused(
    payload: str, problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem):
        build(payload)
    with pytest.raises(InvalidInput, match=problem):
        many(["ok", payload])


def test_batch_ids_are_distinct_and_share_the_time_prefix() -> None:
    ids = new_ids(1000, now=0x5F000000)
    assert len(set(ids)) == 1000
    assert all(len(i) == 24 and i.startswith("5f000000") for i in ids)
    assert all(int(i, 16) >= 0 for i in ids)  # hex throughout


def test_python_payload_round_trips() -> None:
    assert decode_python_payload(python_payload((1, "a"), {"k": [2]})) == (
        [1, "a"],
        {"k": [2]},
    )


@pytest.mark.parametrize("payload", ["[1]", '{"other": 1}', '{"args": {}}', "not json"])
def test_python_payload_of_another_shape_is_refused(payload: str) -> None:
    with pytest.raises(InvalidInput):
        decode_python_payload(payload)


def test_unserialisable_arguments_are_refused() -> None:
    with pytest.raises(InvalidInput, match="JSON"):
        python_payload((object(),), {})


def test_final_statuses_only_move_back_to_queued() -> None:
    for status in TaskStatus:
        if status.is_final:
            assert [s for s in TaskStatus if can_move(status, s)] == [TaskStatus.QUEUED]


def test_queued_cannot_complete_without_running() -> None:
    assert not can_move(TaskStatus.QUEUED, TaskStatus.COMPLETE)
    assert can_move(TaskStatus.RUNNING, TaskStatus.COMPLETE)
