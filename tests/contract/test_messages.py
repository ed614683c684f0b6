"""Message queues (IronMQ v3): the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from workhorse.domain.message import NewMessage
from workhorse.errors import InvalidInput, NotFound, PayloadTooLarge, StaleLease
from workhorse.queues import MessageQueues, expire_messages
from workhorse.storage import Storage

NOW = 1_800_000_000.0


@pytest.fixture
def mq(storage: Storage) -> MessageQueues:
    return MessageQueues(storage)


def post(mq: MessageQueues, queue: str, bodies: list[str], **kw: Any) -> list[str]:
    return mq.post(queue, bodies, now=kw.pop("now", NOW), **kw)


# -- posting and FIFO ----------------------------------------------------------------


def test_reserve_returns_messages_in_post_order_with_reservations(
    mq: MessageQueues,
) -> None:
    ids = post(mq, "q", ["a", "b", "c"])
    got = mq.reserve("q", 3, now=NOW)
    assert [m.id for m in got] == ids
    assert [m.body for m in got] == ["a", "b", "c"]
    assert all(m.reserved_count == 1 and m.reservation_id for m in got)
    assert len({m.reservation_id for m in got}) == 3


def test_posting_creates_the_queue_and_counts(mq: MessageQueues) -> None:
    post(mq, "q", ["a", "b"])
    post(mq, "q", ["c"], now=NOW + 1)
    mq.reserve("q", now=NOW + 1)
    info = mq.get_queue("q", now=NOW + 1)
    assert (info.size, info.total_messages) == (3, 3)  # a reserved message still counts
    assert info.id
    assert info.settings.message_timeout == 60


@pytest.mark.parametrize("count", [1, 3], ids=["one", "batch"])
def test_a_post_retried_after_its_commit_landed_stores_each_message_once(
    mq: MessageQueues,
    lose_first_commit: Callable[[], list[int]],
    monkeypatch: pytest.MonkeyPatch,
    count: int,
) -> None:
    # The retry must skip the messages stored (a first try on PostgreSQL has no
    # ON CONFLICT to do it).
    post(mq, "q", ["first"])  # the queue exists
    tries = lose_first_commit()
    ids = post(mq, "q", [f"m{i}" for i in range(count)])
    monkeypatch.undo()
    assert tries == [2]
    got = mq.reserve("q", 10, now=NOW)
    assert [m.body for m in got] == ["first", *(f"m{i}" for i in range(count))]
    assert [m.id for m in got][1:] == ids


def test_size_counts_delayed_messages_and_they_wait(mq: MessageQueues) -> None:
    mq.post("q", [NewMessage("later", delay=30), NewMessage("now")], now=NOW)
    assert mq.get_queue("q", now=NOW).size == 2
    assert [m.body for m in mq.reserve("q", 2, now=NOW)] == ["now"]
    assert [m.body for m in mq.reserve("q", 2, now=NOW + 30)] == ["later"]


def test_fifo_holds_over_ten_thousand_messages_with_one_consumer(
    mq: MessageQueues,
) -> None:
    total = 10_000
    for start in range(0, total, 100):
        post(mq, "fifo", [str(i) for i in range(start, start + 100)])
    seen: list[int] = []
    while True:
        batch = mq.reserve("fifo", 100, now=NOW)
        if not batch:
            break
        seen.extend(int(m.body) for m in batch)
        assert len(
            mq.delete_many("fifo", [(m.id, m.reservation_id) for m in batch], now=NOW)
        ) == len(batch)
    violations = sum(1 for a, b in itertools.pairwise(seen) if b != a + 1)
    assert violations == 0
    assert len(seen) == total
    assert mq.get_queue("fifo", now=NOW).size == 0


def test_concurrent_consumers_never_share_a_message(mq: MessageQueues) -> None:
    total, consumers = 1_000, 4
    for start in range(0, total, 100):
        post(mq, "shared", [str(i) for i in range(start, start + 100)])
    delivered: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            while True:
                batch = mq.reserve("shared", 7, timeout=600)
                if not batch:
                    return
                with lock:
                    delivered.extend(m.body for m in batch)
                mq.delete_many("shared", [(m.id, m.reservation_id) for m in batch])
        except BaseException as exc:  # surface failures in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    counts = Counter(delivered)
    assert [body for body, n in counts.items() if n > 1] == []
    assert len(counts) == total


# -- reservations --------------------------------------------------------------------


def test_an_expired_reservation_redelivers_the_same_message_and_the_old_id_is_useless(
    mq: MessageQueues,
) -> None:
    [mid] = post(mq, "q", ["x"])
    [first] = mq.reserve("q", timeout=30, now=NOW)
    assert mq.reserve("q", now=NOW + 29) == []  # still held
    [second] = mq.reserve("q", timeout=30, now=NOW + 30)
    assert second.id == mid
    assert second.reserved_count == 2
    assert second.reservation_id != first.reservation_id
    assert first.reservation_id is not None
    assert second.reservation_id is not None
    with pytest.raises(StaleLease):
        mq.delete("q", mid, first.reservation_id, now=NOW + 31)
    with pytest.raises(StaleLease):
        mq.touch("q", mid, first.reservation_id, now=NOW + 31)
    with pytest.raises(StaleLease):
        mq.release("q", mid, first.reservation_id, now=NOW + 31)
    mq.delete("q", mid, second.reservation_id, now=NOW + 31)
    with pytest.raises(NotFound):
        mq.get_message("q", mid, now=NOW + 31)


def test_deleting_after_the_reservation_expired_is_refused(mq: MessageQueues) -> None:
    [mid] = post(mq, "q", ["x"])
    [m] = mq.reserve("q", timeout=10, now=NOW)
    assert m.reservation_id is not None
    with pytest.raises(StaleLease, match="timed out"):
        mq.delete("q", mid, m.reservation_id, now=NOW + 10)
    assert mq.get_message("q", mid, now=NOW + 10).id == mid


def test_a_reserved_message_needs_its_reservation_id_to_be_deleted(
    mq: MessageQueues,
) -> None:
    a, b = post(mq, "q", ["reserved", "free"])
    mq.reserve("q", now=NOW)
    with pytest.raises(StaleLease):
        mq.delete("q", a, now=NOW)
    mq.delete("q", b, now=NOW)  # not reserved: no reservation id needed
    with pytest.raises(NotFound, match="Message not found"):
        mq.delete("q", b, now=NOW)


def test_touch_extends_under_a_new_reservation_id(mq: MessageQueues) -> None:
    [mid] = post(mq, "q", ["x"])
    [m] = mq.reserve("q", timeout=10, now=NOW)
    assert m.reservation_id is not None
    new = mq.touch("q", mid, m.reservation_id, timeout=20, now=NOW + 9)
    assert new != m.reservation_id
    assert mq.reserve("q", now=NOW + 28) == []  # extended to NOW + 29
    with pytest.raises(StaleLease):
        mq.delete("q", mid, m.reservation_id, now=NOW + 10)
    assert mq.get_message("q", mid, now=NOW + 10).reserved_count == 2  # touch counts
    mq.delete("q", mid, new, now=NOW + 28)


def test_released_messages_go_back_to_the_front(mq: MessageQueues) -> None:
    post(mq, "q", ["a", "b", "c", "d"])
    a, b = mq.reserve("q", 2, now=NOW)
    assert b.reservation_id is not None
    assert a.reservation_id is not None
    mq.release("q", b.id, b.reservation_id, now=NOW)
    mq.release("q", a.id, a.reservation_id, now=NOW)
    assert [m.body for m in mq.peek("q", 4, now=NOW)] == ["a", "b", "c", "d"]
    assert [m.body for m in mq.reserve("q", 4, now=NOW)] == ["a", "b", "c", "d"]


def test_release_with_delay(mq: MessageQueues) -> None:
    post(mq, "q", ["a", "b"])
    [a] = mq.reserve("q", now=NOW)
    assert a.reservation_id is not None
    mq.release("q", a.id, a.reservation_id, delay=60, now=NOW)
    assert [m.body for m in mq.reserve("q", 2, now=NOW + 1)] == ["b"]
    [again] = mq.reserve("q", 2, now=NOW + 60)
    assert (again.body, again.reserved_count) == ("a", 2)


def test_timed_out_messages_come_first_again(mq: MessageQueues) -> None:
    post(mq, "q", ["a", "b", "c"])
    mq.reserve("q", 2, timeout=10, now=NOW)
    assert [m.body for m in mq.peek("q", 3, now=NOW + 10)] == ["a", "b", "c"]
    assert [(m.body, m.reserved_count) for m in mq.reserve("q", 3, now=NOW + 10)] == [
        ("a", 2),
        ("b", 2),
        ("c", 1),
    ]


def test_pop_deletes_as_it_reserves(mq: MessageQueues) -> None:
    post(mq, "q", ["a", "b"])
    [m] = mq.reserve("q", delete=True, now=NOW)
    assert m.body == "a"
    assert mq.get_queue("q", now=NOW).size == 1
    with pytest.raises(NotFound):
        mq.get_message("q", m.id, now=NOW)


def test_peek_and_get_reserve_nothing(mq: MessageQueues) -> None:
    ids = post(mq, "q", ["a", "b"])
    assert [m.id for m in mq.peek("q", 5, now=NOW)] == ids
    got = mq.get_message("q", ids[1], now=NOW)
    assert (got.body, got.reserved_count, got.reservation_id) == ("b", 0, None)
    assert [m.reserved_count for m in mq.reserve("q", 2, now=NOW)] == [1, 1]


def test_batch_delete_deletes_what_applies(mq: MessageQueues) -> None:
    ids = post(mq, "q", ["a", "b", "c"])
    a, b = mq.reserve("q", 2, now=NOW)
    deleted = mq.delete_many(
        "q",
        [(a.id, a.reservation_id), (b.id, "stale"), (ids[2], None), ("nope", None)],
        now=NOW,
    )
    assert sorted(deleted) == sorted([a.id, ids[2]])
    assert [m.id for m in mq.peek("q", 5, now=NOW + 100)] == [b.id]


def test_clear_removes_everything(mq: MessageQueues) -> None:
    post(mq, "q", ["a", "b", "c"])
    mq.reserve("q", now=NOW)
    assert mq.clear("q") == 3
    assert mq.get_queue("q", now=NOW).size == 0
    assert mq.reserve("q", now=NOW + 100) == []


# -- dead letters and expiration -----------------------------------------------------


def test_dead_letter_after_exactly_max_reservations(mq: MessageQueues) -> None:
    mq.create_queue(
        "work", {"dead_letter": {"queue_name": "dlq", "max_reservations": 3}}
    )
    [mid] = post(mq, "work", ["poison"])
    for i in range(3):
        [m] = mq.reserve("work", timeout=10, now=NOW + i * 100)
        assert (m.id, m.reserved_count) == (mid, i + 1)
    assert mq.reserve("work", now=NOW + 300) == []
    [dead] = mq.peek("dlq", now=NOW + 300)
    assert (dead.id, dead.body, dead.reserved_count) == (mid, "poison", 3)
    assert mq.get_queue("work", now=NOW + 300).size == 0
    assert mq.get_queue("dlq", now=NOW + 300).total_messages == 1


def test_dead_lettering_refills_the_reserve(mq: MessageQueues) -> None:
    mq.create_queue(
        "work", {"dead_letter": {"queue_name": "dlq", "max_reservations": 1}}
    )
    post(mq, "work", ["once"])
    mq.reserve("work", timeout=10, now=NOW)
    post(mq, "work", ["fresh"], now=NOW + 1)
    assert [m.body for m in mq.reserve("work", 5, now=NOW + 20)] == ["fresh"]
    assert [m.body for m in mq.peek("dlq", now=NOW + 20)] == ["once"]


def test_expired_messages_are_not_delivered_and_are_swept(mq: MessageQueues) -> None:
    mq.create_queue("short", {"message_expiration": 100})
    post(mq, "short", ["old"])
    post(mq, "short", ["new"], now=NOW + 50)
    assert [m.body for m in mq.peek("short", 5, now=NOW + 100)] == ["new"]
    assert mq.get_queue("short", now=NOW + 100).size == 1
    assert expire_messages(mq.storage, now=NOW + 100) == 1
    assert [m.body for m in mq.reserve("short", 5, now=NOW + 100)] == ["new"]


# -- long polling --------------------------------------------------------------------


def test_long_poll_wakes_when_a_message_is_posted(
    mq: MessageQueues, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    mq.create_queue("lp")
    waiting = threading.Event()
    woken: list[bool] = []
    real_listen = storage.listen

    def listen(keys: Any, **kw: Any) -> Any:
        listener = real_listen(keys, **kw)
        real_wait = listener.wait

        def wait(seconds: float) -> bool:
            waiting.set()
            result = real_wait(seconds)
            woken.append(result)
            return result

        listener.wait = wait  # type: ignore[method-assign]
        return listener

    monkeypatch.setattr(storage, "listen", listen)
    got: list[Any] = []
    consumer = threading.Thread(target=lambda: got.extend(mq.reserve("lp", wait=30)))
    consumer.start()
    assert waiting.wait(10), "the consumer never started waiting"
    ids = mq.post("lp", ["hello"])
    consumer.join(timeout=25)
    assert not consumer.is_alive()
    assert [m.id for m in got] == ids
    assert woken
    assert woken[-1] is True


def test_long_poll_wakes_on_a_post_from_another_process(
    mq: MessageQueues, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second storage has its own connections and notification hub, as another
    process would: the wake-up must come through the database."""
    from workhorse.storage import open_storage

    mq.create_queue("remote")
    waiting = threading.Event()
    woken: list[bool] = []
    real_listen = storage.listen

    def listen(keys: Any, **kw: Any) -> Any:
        listener = real_listen(keys, **kw)
        real_wait = listener.wait

        def wait(seconds: float) -> bool:
            waiting.set()
            result = real_wait(seconds)
            woken.append(result)
            return result

        listener.wait = wait  # type: ignore[method-assign]
        return listener

    monkeypatch.setattr(storage, "listen", listen)
    got: list[Any] = []
    consumer = threading.Thread(
        target=lambda: got.extend(mq.reserve("remote", wait=30))
    )
    consumer.start()
    assert waiting.wait(10), "the consumer never started waiting"
    other = open_storage(storage.settings)
    try:
        ids = MessageQueues(other).post("remote", ["from afar"])
    finally:
        other.close()
    consumer.join(timeout=25)
    assert not consumer.is_alive()
    assert [m.id for m in got] == ids
    assert woken
    assert woken[-1] is True


def test_long_poll_gives_up_when_told_to_stop(mq: MessageQueues) -> None:
    mq.create_queue("idle")
    stop = threading.Event()
    got: list[Any] = [None]
    consumer = threading.Thread(
        target=lambda: got.__setitem__(0, mq.reserve("idle", wait=30, stop=stop))
    )
    consumer.start()
    stop.set()
    consumer.join(timeout=10)
    assert not consumer.is_alive()
    assert got[0] == []


# -- bad input changes nothing -------------------------------------------------------


def _snapshot(mq: MessageQueues) -> list[tuple[str, int | None, int]]:
    return [
        (q.name, mq.get_queue(q.name, now=NOW).size, q.total_messages)
        for q in mq.list_queues(per_page=100)
    ]


def test_bad_input_raises_and_changes_nothing(mq: MessageQueues) -> None:
    post(mq, "q", ["keep"])
    before = _snapshot(mq)
    big = "x" * (mq.settings.max_message_bytes + 1)
    cases: list[tuple[type[Exception], Any]] = [
        (PayloadTooLarge, lambda: mq.post("q", ["fine", big])),
        (InvalidInput, lambda: mq.post("q", [])),
        (InvalidInput, lambda: mq.post("q", ["m"] * 101)),
        (InvalidInput, lambda: mq.post("q", [NewMessage("m", delay=-1)])),
        (InvalidInput, lambda: mq.post("q", [NewMessage("m", delay=604_801)])),
        (InvalidInput, lambda: mq.post("q", [NewMessage("m", delay="soon")])),  # type: ignore[arg-type]
        (
            InvalidInput,
            lambda: mq.post("q", [NewMessage("m", push_headers={"User-Agent": "x"})]),
        ),
        (InvalidInput, lambda: mq.post("q", [123])),  # type: ignore[list-item]
        (InvalidInput, lambda: mq.post("bad/name", ["m"])),
        (InvalidInput, lambda: mq.reserve("q", 101)),
        (InvalidInput, lambda: mq.reserve("q", 0)),
        (InvalidInput, lambda: mq.reserve("q", wait=31)),
        (InvalidInput, lambda: mq.reserve("q", timeout=-1)),
        (InvalidInput, lambda: mq.peek("q", 101)),
        (InvalidInput, lambda: mq.delete_many("q", [])),
        (InvalidInput, lambda: mq.release("q", "id", "rid", delay=-5)),
        (NotFound, lambda: mq.reserve("missing")),
        (NotFound, lambda: mq.reserve("missing", wait=1)),
        (NotFound, lambda: mq.peek("missing")),
        (NotFound, lambda: mq.get_message("missing", "x")),
        (NotFound, lambda: mq.get_queue("missing")),
        (NotFound, lambda: mq.delete("missing", "x")),
        (NotFound, lambda: mq.touch("missing", "x", "r")),
        (NotFound, lambda: mq.release("missing", "x", "r")),
        (NotFound, lambda: mq.clear("missing")),
        (NotFound, lambda: mq.delete_queue("missing")),
        (NotFound, lambda: mq.update_queue("missing", {"message_timeout": 5})),
    ]
    for error, call in cases:
        with pytest.raises(error):
            call()
    assert _snapshot(mq) == before
    with pytest.raises(NotFound, match="Queue not found"):
        mq.reserve("missing")


def test_a_push_queue_cannot_be_reserved_from(mq: MessageQueues) -> None:
    mq.create_queue(
        "pushq",
        {"push": {"subscribers": [{"name": "s", "url": "http://example.com/h"}]}},
    )
    with pytest.raises(InvalidInput):
        mq.reserve("pushq")
