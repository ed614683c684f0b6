"""Single message posts: on SQLite they wait in the intake until admitted (migration
0010); on either backend every operation must see them as posted messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.test_intake import intake_size as task_intake_size
from workhorse.domain.message import NewMessage
from workhorse.queues import MessageQueues, check_alerts, expire_messages
from workhorse.storage import Storage
from workhorse.storage.messages import MessageStore

NOW = 1_800_000_000.0


@pytest.fixture
def mq(storage: Storage) -> MessageQueues:
    return MessageQueues(storage)


def intake_size(storage: Storage) -> int:
    return task_intake_size(storage, "mq_intake")


def post_singly(mq: MessageQueues, queue: str, bodies: list[str]) -> list[str]:
    return [mq.post(queue, [b], now=NOW)[0] for b in bodies]


def test_single_posts_to_a_pull_queue_wait_in_the_intake_on_sqlite(
    storage: Storage, mq: MessageQueues
) -> None:
    mq.create_queue("q")
    post_singly(mq, "q", ["a", "b"])
    waiting = 2 if storage.dialect == "sqlite" else 0
    assert intake_size(storage) == waiting
    assert storage.run(lambda tx: tx.messages.admit()) == waiting
    assert intake_size(storage) == 0
    assert [m.body for m in mq.reserve("q", 5, now=NOW)] == ["a", "b"]


def _info(mq: MessageQueues, ids: list[str]) -> tuple[int, int]:
    info = mq.get_queue("q", now=NOW)
    return info.size, info.total_messages


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        pytest.param(
            lambda mq, ids: mq.get_message("q", ids[1], now=NOW).body, "b", id="get"
        ),
        pytest.param(
            lambda mq, ids: [m.body for m in mq.peek("q", 5, now=NOW)],
            ["a", "b", "c"],
            id="peek",
        ),
        pytest.param(_info, (3, 3), id="info"),
        pytest.param(
            lambda mq, ids: [(q.name, q.total_messages) for q in mq.list_queues()],
            [("q", 3)],
            id="list",
        ),
    ],
)
def test_every_read_sees_single_posts_and_admits_them(
    storage: Storage,
    mq: MessageQueues,
    read: Callable[[MessageQueues, list[str]], Any],
    expected: Any,
) -> None:
    mq.post("q", ["a"], now=NOW)  # creates the queue: the full path
    ids = ["a", *post_singly(mq, "q", ["b", "c"])]
    assert intake_size(storage) == (2 if storage.dialect == "sqlite" else 0)
    assert read(mq, ids) == expected
    assert intake_size(storage) == 0


def test_fifo_holds_across_single_and_batch_posts(mq: MessageQueues) -> None:
    mq.create_queue("q")
    ids = post_singly(mq, "q", ["a"])
    ids += mq.post("q", ["b", "c"], now=NOW)
    ids += post_singly(mq, "q", ["d", "e"])
    ids += mq.post("q", ["f", "g"], now=NOW)
    got = mq.reserve("q", 10, now=NOW)
    assert [m.body for m in got] == list("abcdefg")
    assert [m.id for m in got] == ids


def test_fifo_holds_per_queue_when_queues_interleave(mq: MessageQueues) -> None:
    for name in ("one", "two"):
        mq.create_queue(name)
    for i in range(5):
        post_singly(mq, "one", [f"one-{i}"])
        post_singly(mq, "two", [f"two-{i}"])
    assert [m.body for m in mq.reserve("two", 10, now=NOW)] == [
        f"two-{i}" for i in range(5)
    ]
    assert [m.body for m in mq.reserve("one", 10, now=NOW)] == [
        f"one-{i}" for i in range(5)
    ]


def test_push_queues_and_new_queues_take_the_full_path(
    storage: Storage, mq: MessageQueues
) -> None:
    mq.create_queue(
        "pushed",
        {"type": "multicast", "push": {"subscribers": [{"url": "http://x.test/"}]}},
    )
    mq.post("pushed", ["p"], now=NOW)
    mq.post("brand-new", ["n"], now=NOW)
    assert intake_size(storage) == 0
    assert mq.get_queue("brand-new", now=NOW).total_messages == 1
    # The new queue exists now: the next single post may wait in the intake.
    mq.post("brand-new", ["m"], now=NOW)
    assert intake_size(storage) == (1 if storage.dialect == "sqlite" else 0)


def test_alerts_count_single_posts(storage: Storage, mq: MessageQueues) -> None:
    mq.create_queue(
        "jobs",
        {
            "alerts": [
                {"type": "fixed", "direction": "asc", "trigger": 2, "queue": "ctl"}
            ]
        },
    )
    post_singly(mq, "jobs", ["1"])
    assert check_alerts(storage, now=NOW) == 0
    post_singly(mq, "jobs", ["2", "3"])
    assert check_alerts(storage, now=NOW + 1) == 1
    [alert] = mq.reserve("ctl", 5, now=NOW + 1)
    assert json.loads(alert.body)["queue_size"] == 3


def test_a_delayed_single_post_waits_and_counts(mq: MessageQueues) -> None:
    mq.create_queue("q")
    mq.post("q", [NewMessage("later", delay=30)], now=NOW)
    assert mq.get_queue("q", now=NOW).size == 1
    assert mq.reserve("q", 5, now=NOW) == []
    assert [m.body for m in mq.reserve("q", 5, now=NOW + 30)] == ["later"]


def test_a_message_in_the_intake_can_be_deleted_by_id(mq: MessageQueues) -> None:
    mq.create_queue("q")
    keep, drop = post_singly(mq, "q", ["keep", "drop"])
    mq.delete("q", drop)
    assert [m.id for m in mq.reserve("q", 5, now=NOW)] == [keep]


def test_a_delete_with_its_reservation_id_leaves_the_intake_alone(
    storage: Storage, mq: MessageQueues
) -> None:
    """A reserved message was admitted: its delete, one autocommitted statement,
    needs no admission (a transaction of its own) first."""
    mq.create_queue("q")
    post_singly(mq, "q", ["a", "b"])
    a, _ = mq.reserve("q", 2, now=NOW)  # admits both
    post_singly(mq, "q", ["c"])
    assert a.reservation_id is not None
    mq.delete("q", a.id, a.reservation_id, now=NOW)
    assert intake_size(storage) == (1 if storage.dialect == "sqlite" else 0)
    assert [m.body for m in mq.reserve("q", 5, now=NOW + 60)] == ["b", "c"]


def test_admission_needs_a_write_transaction(storage: Storage) -> None:
    """One autocommitted statement per step could delete newer posts with it."""
    if storage.dialect != "sqlite":
        pytest.skip("only SQLite has a message intake")
    with pytest.raises(RuntimeError, match="write transaction"):
        storage.run(lambda tx: tx.messages.admit(), single_statement=True)


def test_clear_and_delete_queue_take_the_intake_along(
    storage: Storage, mq: MessageQueues
) -> None:
    mq.create_queue("q")
    post_singly(mq, "q", ["a", "b"])
    assert mq.clear("q") == 2
    assert mq.get_queue("q", now=NOW).size == 0
    post_singly(mq, "q", ["c"])
    mq.delete_queue("q")
    mq.create_queue("q")
    assert mq.get_queue("q", now=NOW).size == 0
    assert mq.reserve("q", 5, now=NOW) == []
    assert intake_size(storage) == 0


def test_messages_in_the_intake_expire_from_their_post(
    storage: Storage, mq: MessageQueues
) -> None:
    mq.create_queue("q", {"message_expiration": 60})
    post_singly(mq, "q", ["old"])
    assert expire_messages(storage, now=NOW + 60) == 1
    assert mq.get_queue("q", now=NOW + 60).size == 0


def test_a_read_admits_once_while_posts_keep_landing(
    storage: Storage, mq: MessageQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Posts that land after a read began need not be seen: the read admits what
    was there, reads again and returns, however many posts follow."""
    if storage.dialect != "sqlite":
        pytest.skip("only SQLite has a message intake")
    mq.create_queue("q")
    post_singly(mq, "q", ["before"])
    real = MessageStore.admit
    admissions: list[int] = []

    def admit_then_another_post_lands(self: MessageStore, **kw: Any) -> int:
        moved = real(self, **kw)
        admissions.append(moved)
        self.intake_post(
            "default", "q", f"late{len(admissions)}", NewMessage("late"), now=NOW
        )
        return moved

    monkeypatch.setattr(MessageStore, "admit", admit_then_another_post_lands)
    assert [m.body for m in mq.peek("q", 5, now=NOW)] == ["before"]
    assert admissions == [1]
    monkeypatch.undo()
    assert [m.body for m in mq.peek("q", 5, now=NOW)] == ["before", "late"]


def test_a_long_intake_is_admitted_by_its_producer(
    storage: Storage, mq: MessageQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no consumer, posts look at the intake now and then and admit it once
    it is long, so that no later call has a long admission to make."""
    from workhorse.queues import operations

    monkeypatch.setattr(operations, "INTAKE_CHECK_EVERY", 4)
    monkeypatch.setattr(operations, "INTAKE_LIMIT", 6)
    mq.create_queue("q")
    sizes = []
    for i in range(12):
        mq.post("q", [f"m{i}"], now=NOW)
        sizes.append(intake_size(storage))
    if storage.dialect == "sqlite":
        # Checked after every 4th post process-wide: the first check that finds
        # 6 or more waiting admits them.
        assert 0 in sizes
        assert max(sizes) < 4 + 6
    assert [m.body for m in mq.reserve("q", 20, now=NOW)] == [
        f"m{i}" for i in range(12)
    ]
