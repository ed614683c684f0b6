"""The queue SDK (`app.queues`), the continuous-stream consumer, `workhorse queue`."""

from __future__ import annotations

import json
import threading
import types
from typing import Any

import pytest
from click.testing import CliRunner

from workhorse.app import App
from workhorse.cli.main import cli
from workhorse.domain.message import Message
from workhorse.errors import NotFound, StaleLease
from workhorse.queues.sdk import Queue


def test_post_reserve_delete_through_the_sdk(app: App) -> None:
    orders = app.queues["orders"]
    one = orders.post("plain")
    two = orders.post({"order": 2})
    more = orders.post(["x", {"y": 1}])
    assert isinstance(one, str)
    assert isinstance(more, list)
    assert len(more) == 2
    assert orders.size == 4
    assert orders.info().total_messages == 4
    assert [m.id for m in orders.peek(4)] == [one, two, *more]
    first, second = orders.reserve(2, timeout=30)
    assert (first.body, json.loads(second.body)) == ("plain", {"order": 2})
    orders.delete(first)
    touched = orders.touch(second)
    assert touched.reservation_id != second.reservation_id
    with pytest.raises(StaleLease):
        orders.delete(second)
    orders.release(touched)
    assert orders.reserve()[0].id == two  # released to the front
    assert orders.get(more[0]).body == "x"
    assert sorted(orders.delete_many(more)) == sorted(more)
    assert orders.clear() == 1
    assert [q.name for q in app.queues.list()] == ["orders"]
    app.queues.create("audit", message_timeout=5)
    assert app.queues["audit"].info().settings.message_timeout == 5
    app.queues["audit"].remove()
    with pytest.raises(NotFound):
        app.queues["audit"].info()


def test_consume_deletes_handled_messages_and_retries_failures(app: App) -> None:
    jobs = app.queues["jobs"]
    jobs.post([str(i) for i in range(20)])
    handled: list[str] = []
    failed_once: set[str] = set()
    stop = threading.Event()

    def handler(message: Message) -> None:
        if message.body == "7" and "7" not in failed_once:
            failed_once.add("7")
            raise RuntimeError("first try fails")
        handled.append(message.body)
        if len(set(handled)) == 20:
            stop.set()

    consumer = jobs.consumer(handler, batch=5, wait=5, stop=stop)
    count = consumer.run()
    assert sorted(set(handled), key=int) == [str(i) for i in range(20)]
    assert len(handled) == 20
    assert count == 21
    assert (consumer.handled, consumer.failed) == (20, 1)
    assert jobs.size == 0


def test_consume_touches_long_handlers(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = app.queues["slow"]
    slow.create(message_timeout=3)
    slow.post("long job")
    touched = threading.Event()
    real_touch = Queue.touch

    def touch(self: Queue, message: Message, **kw: Any) -> Message:
        result = real_touch(self, message, **kw)
        touched.set()
        return result

    monkeypatch.setattr(Queue, "touch", touch)

    def handler(message: Message) -> None:
        assert touched.wait(15), "the reservation was never touched"

    assert slow.consume(handler, limit=1, wait=1) == 1
    assert slow.size == 0  # deleted with the touched reservation id


def test_a_started_consumer_stops_promptly_while_long_polling(app: App) -> None:
    idle = app.queues["idle"]  # not created yet: the consumer creates it
    consumer = idle.consumer(lambda m: None, wait=30)
    thread = consumer.start()
    consumer.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_consumer_that_finishes_leaves_a_shared_stop_event_alone(app: App) -> None:
    shared = threading.Event()
    app.queues["a"].post("one")
    assert app.queues["a"].consume(lambda m: None, limit=1, wait=1, stop=shared) == 1
    assert not shared.is_set()


def test_cli_queue_commands(app: App) -> None:
    runner = CliRunner()
    base = ["--database-url", app.settings.database_url, "queue"]

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, [*base, *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    ids = run("post", "orders", "a", "b").split()
    assert len(ids) == 2
    assert "orders" in run("list")
    assert json.loads(run("info", "orders", "--json"))["size"] == 2
    [peeked] = json.loads(run("peek", "orders", "--json"))
    assert peeked["id"] == ids[0]
    assert "reservation_id" not in peeked
    [reserved] = json.loads(run("reserve", "orders", "--timeout", "30", "--json"))
    assert reserved["id"] == ids[0]
    run("delete", "orders", ids[0], code=1)  # reserved: needs its reservation id
    assert "deleted" in run(
        "delete", "orders", ids[0], "--reservation-id", reserved["reservation_id"]
    )
    assert "cleared 1" in run("clear", "orders")
    run(
        "create",
        "work",
        "--timeout",
        "15",
        "--dead-letter",
        "dead",
        "--max-reservations",
        "2",
    )
    assert json.loads(run("info", "work", "--json"))["dead_letter"] == {
        "queue_name": "dead",
        "max_reservations": 2,
    }
    run("delete", "work", "--yes")
    run("reserve", "work", code=2)  # NotFound
    run("reserve", "orders", "-n", "101", code=2)  # bad input


def test_the_touch_thread_outlives_an_unexpected_error() -> None:
    from workhorse.queues.sdk import _Keeper

    touched = threading.Event()

    class FlakyQueue:
        name = "flaky"
        calls = 0

        def touch(self, message: object) -> object:
            FlakyQueue.calls += 1
            if FlakyQueue.calls == 1:
                raise RuntimeError("injected failure")
            touched.set()
            return message

    stop = threading.Event()
    keeper = _Keeper(FlakyQueue(), 0.01, stop)  # type: ignore[arg-type]
    keeper.hold([types.SimpleNamespace(id="m1")])  # type: ignore[list-item]
    try:
        assert touched.wait(5), "no touch after the failed one"
        assert keeper.take("m1") is not None
    finally:
        stop.set()
        keeper.join()
