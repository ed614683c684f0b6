"""Push queues on both backends: delivery to a local HTTP receiver, retries, error
queues, 202 acknowledgements, unicast, internal targets, and the address guard."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from workhorse.app import App
from workhorse.client import Client
from workhorse.domain.message import NewMessage
from workhorse.errors import StaleLease
from workhorse.queues import MessageQueues
from workhorse.settings import Settings
from workhorse.storage import Storage, open_storage
from workhorse.worker.pusher import Pusher, PusherConfig

NOW = 1_800_000_000.0


class Receiver:
    """A tiny webhook server on 127.0.0.1: `/<code>/<name>` answers with <code>."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(
                    int(self.headers.get("Content-Length") or 0)
                ).decode()
                code = int(self.path.strip("/").split("/")[0])
                with receiver.cond:
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    receiver.cond.notify_all()
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, path: str) -> list[dict[str, Any]]:
        with self.cond:
            return [r for r in self.requests if r["path"] == path]

    def wait_for(self, count: int, timeout: float = 15) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.requests) >= count, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def push_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, push_allow=("127.0.0.1/32",))


@pytest.fixture
def push_storage(push_settings: Settings) -> Iterator[Storage]:
    s = open_storage(push_settings)
    yield s
    s.close()


@pytest.fixture
def mq(push_storage: Storage) -> MessageQueues:
    return MessageQueues(push_storage)


@pytest.fixture
def make_pusher(push_storage: Storage) -> Iterator[Callable[..., Pusher]]:
    made: list[Pusher] = []

    def make(storage: Storage | None = None, **config: Any) -> Pusher:
        pusher = Pusher(
            storage or push_storage, PusherConfig(request_timeout=5, **config)
        )
        made.append(pusher)
        return pusher

    yield make
    for p in made:
        p.stop(timeout=2)


def push_queue(mq: MessageQueues, name: str, urls: dict[str, str], **push: Any) -> None:
    kind = push.pop("type", None)
    settings: dict[str, Any] = {
        "push": {
            "subscribers": [{"name": n, "url": u} for n, u in urls.items()],
            **push,
        }
    }
    if kind:
        settings["type"] = kind
    mq.create_queue(name, settings)


def test_multicast_delivers_to_every_subscriber(
    mq: MessageQueues, receiver: Receiver, make_pusher: Callable[..., Pusher]
) -> None:
    push_queue(
        mq, "events", {"one": receiver.url("/200/one"), "two": receiver.url("/200/two")}
    )
    [mid] = mq.post(
        "events", [NewMessage('{"n":1}', push_headers={"X-Trace": "t1"})], now=NOW
    )
    assert [s.status.value for s in mq.push_statuses("events", mid)] == [
        "queued",
        "queued",
    ]
    assert make_pusher().run_once(now=NOW, wait=True) == 1
    for path in ("/200/one", "/200/two"):
        [req] = receiver.to(path)
        assert req["body"] == '{"n":1}'
        assert req["headers"]["Iron-Message-Id"] == mid
        assert req["headers"]["Iron-Reservation-Id"]
        assert req["headers"]["X-Trace"] == "t1"
        assert req["headers"]["User-Agent"] == "IronMQ Pusherd"
        assert req["headers"]["Iron-Subscriber-Message-Url"].endswith(
            f"/queues/events/messages/{mid}"
        )
    assert [
        receiver.to(p)[0]["headers"]["Iron-Subscriber-Name"]
        for p in ("/200/one", "/200/two")
    ] == ["one", "two"]
    assert mq.get_queue("events", now=NOW).size == 0
    statuses = mq.push_statuses("events", mid)
    assert [(s.name, s.status.value, s.status_code, s.tries) for s in statuses] == [
        ("one", "deleted", 200, 1),
        ("two", "deleted", 200, 1),
    ]


def test_failures_are_retried_then_posted_to_the_error_queue(
    mq: MessageQueues, receiver: Receiver, make_pusher: Callable[..., Pusher]
) -> None:
    push_queue(
        mq,
        "events",
        {"good": receiver.url("/200/good"), "bad": receiver.url("/500/bad")},
        retries=1,
        retries_delay=10,
        error_queue="failed",
    )
    [mid] = mq.post("events", ["payload"], now=NOW)
    pusher = make_pusher()
    assert pusher.run_once(now=NOW, wait=True) == 1
    statuses = {s.name: s for s in mq.push_statuses("events", mid)}
    assert statuses["good"].status.value == "deleted"
    assert (statuses["bad"].status.value, statuses["bad"].retries_remaining) == (
        "retrying",
        0,
    )
    assert pusher.run_once(now=NOW + 9, wait=True) == 0  # waits retries_delay
    assert pusher.run_once(now=NOW + 10, wait=True) == 1
    assert (
        len(receiver.to("/200/good")) == 1
    )  # the one that succeeded is not sent again
    assert len(receiver.to("/500/bad")) == 2
    assert mq.get_queue("events", now=NOW + 10).size == 0
    [error] = mq.reserve("failed", now=NOW + 10)
    body = json.loads(error.body)
    assert body["source_msg_id"] == mid
    assert body["body"] == "payload"
    assert body["headers"] == {}
    assert body["subscribers"] == [
        {
            "name": "bad",
            "url": receiver.url("/500/bad"),
            "code": 500,
            "msg": "subscriber answered 500: ok",
        }
    ]
    bad = {s.name: s for s in mq.push_statuses("events", mid)}["bad"]
    assert (bad.status.value, bad.tries) == ("error", 2)


def test_a_202_waits_for_the_subscriber_to_delete_the_message(
    mq: MessageQueues, receiver: Receiver, make_pusher: Callable[..., Pusher]
) -> None:
    push_queue(mq, "events", {"slow": receiver.url("/202/slow")}, retries_delay=30)
    [mid] = mq.post("events", ["work"], now=NOW)
    assert make_pusher().run_once(now=NOW, wait=True) == 1
    [req] = receiver.to("/202/slow")
    rid = req["headers"]["Iron-Reservation-Id"]
    assert [s.status.value for s in mq.push_statuses("events", mid)] == ["reserved"]
    assert mq.get_queue("events", now=NOW + 1).size == 1
    with pytest.raises(StaleLease):
        mq.delete(
            "events", mid, "not-the-reservation", subscriber_name="slow", now=NOW + 1
        )
    mq.delete("events", mid, rid, subscriber_name="slow", now=NOW + 1)
    assert mq.get_queue("events", now=NOW + 1).size == 0
    assert [s.status.value for s in mq.push_statuses("events", mid)] == ["deleted"]


def test_an_unacknowledged_202_is_retried_and_its_old_reservation_refused(
    mq: MessageQueues, receiver: Receiver, make_pusher: Callable[..., Pusher]
) -> None:
    push_queue(
        mq, "events", {"slow": receiver.url("/202/slow")}, retries_delay=30, retries=0
    )
    [mid] = mq.post("events", ["work"], now=NOW)
    pusher = make_pusher()
    pusher.run_once(now=NOW, wait=True)
    first = receiver.to("/202/slow")[0]["headers"]["Iron-Reservation-Id"]
    assert pusher.run_once(now=NOW + 30, wait=True) == 1
    second = receiver.to("/202/slow")[1]["headers"]["Iron-Reservation-Id"]
    assert second != first
    with pytest.raises(StaleLease):
        mq.delete("events", mid, first, subscriber_name="slow", now=NOW + 31)
    mq.delete("events", mid, second, subscriber_name="slow", now=NOW + 31)


def test_unicast_stops_at_the_first_subscriber_that_takes_it(
    mq: MessageQueues, receiver: Receiver, make_pusher: Callable[..., Pusher]
) -> None:
    push_queue(
        mq,
        "jobs",
        {
            "down": receiver.url("/503/down"),
            "up": receiver.url("/200/up"),
            "spare": receiver.url("/200/spare"),
        },
        type="unicast",
    )
    mq.post("jobs", ["a"], now=NOW)
    assert make_pusher().run_once(now=NOW, wait=True) == 1
    assert (
        len(receiver.to("/503/down")),
        len(receiver.to("/200/up")),
        len(receiver.to("/200/spare")),
    ) == (1, 1, 0)
    assert mq.get_queue("jobs", now=NOW).size == 0


def test_private_addresses_are_refused_without_the_allow_list(
    settings: Settings, receiver: Receiver, make_pusher: Callable[..., Pusher]
) -> None:
    storage = open_storage(settings)  # no push_allow
    try:
        guarded = MessageQueues(storage)
        push_queue(
            guarded,
            "events",
            {"local": receiver.url("/200/local")},
            retries=0,
            error_queue="failed",
        )
        [mid] = guarded.post("events", ["secret"], now=NOW)
        make_pusher(storage).run_once(now=NOW, wait=True)
        assert receiver.requests == []
        [status] = guarded.push_statuses("events", mid)
        assert status.status.value == "error"
        assert "private or local address" in (status.error or "")
        [error] = guarded.reserve("failed", now=NOW)
        assert json.loads(error.body)["source_msg_id"] == mid
    finally:
        storage.close()


def test_ironmq_subscribers_fan_out_into_other_queues(
    mq: MessageQueues, make_pusher: Callable[..., Pusher]
) -> None:
    push_queue(
        mq,
        "fan",
        {"a": "ironmq:///copy-a", "b": "ironmq://default:token@localhost/copy-b"},
    )
    mq.post("fan", ["hello"], now=NOW)
    make_pusher().run_once(now=NOW, wait=True)
    assert [m.body for m in mq.reserve("copy-a")] == [
        "hello"
    ]  # posted on the real clock
    assert [m.body for m in mq.reserve("copy-b")] == ["hello"]


def test_ironworker_subscribers_queue_a_task_with_the_body_as_payload(
    mq: MessageQueues, push_storage: Storage, make_pusher: Callable[..., Pusher]
) -> None:
    client = Client(push_storage)
    client.register_python("handle", {})
    push_queue(mq, "tasks", {"w": "ironworker://default:token@localhost/handle"})
    mq.post("tasks", ['{"args": [1]}'], now=NOW)
    make_pusher().run_once(now=NOW, wait=True)
    [(_, task)] = client.list(code_name="handle")
    assert task.payload == '{"args": [1]}'


def test_a_runner_delivers_push_messages_as_they_are_posted(
    push_settings: Settings, receiver: Receiver, start_worker: Callable[..., Any]
) -> None:
    app = App(settings=push_settings)
    try:
        worker = start_worker(app, concurrency=1)
        orders = app.queues["orders"]
        orders.create(
            push={"subscribers": [{"name": "hook", "url": receiver.url("/200/hook")}]}
        )
        mid = orders.post({"order": 7})
        assert receiver.wait_for(1), "the runner never delivered the message"
        assert receiver.to("/200/hook")[0]["body"] == '{"order":7}'
        worker.stop(grace=2)  # waits for the delivery in flight to be recorded
        assert [s.status.value for s in orders.push_statuses(mid)] == ["deleted"]
        assert orders.size == 0
    finally:
        app.close()
