"""The official iron-mq 0.9 client, unchanged, against `workhorse up`.

Every public method is exercised except `IronMQ.queues()`/`getQueues()`, which
are broken in the client on Python 3 (docs/iron-compat.md); listing is checked
over plain HTTP instead.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from iron_mq import IronMQ, Queue
from requests.exceptions import HTTPError

from tests.acceptance.conftest import Running

pytestmark = pytest.mark.slow


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll `check` until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def status_of(call: Callable[[], object]) -> int:
    """The HTTP status of a call expected to fail."""
    with pytest.raises(HTTPError) as err:
        call()
    return int(err.value.response.status_code)


@pytest.fixture
def mq(iron_env: Running) -> IronMQ:
    """A client configured only through IRON_* variables."""
    return IronMQ()


@pytest.fixture
def queue(mq: IronMQ) -> Queue:
    """A fresh, empty pull queue."""
    name = f"q-{uuid.uuid4().hex[:8]}"
    mq.create_queue(name)
    return mq.queue(name)


def test_post_reserve_in_order_and_delete(queue: Queue) -> None:
    posted = queue.post("a", "b", {"body": "c"})
    assert posted["msg"] == "Messages put on queue."
    got = queue.reserve(max=3, timeout=30)["messages"]
    assert [m["body"] for m in got] == ["a", "b", "c"]
    assert [m["id"] for m in got] == posted["ids"]
    assert all(m["reserved_count"] == 1 and m["reservation_id"] for m in got)
    assert queue.size() == 3  # reserved messages still count
    assert queue.total_messages() == 3
    for m in got:
        assert queue.delete(m["id"], m["reservation_id"])["msg"] == "Deleted"
    assert queue.size() == 0
    assert queue.get()["messages"] == []  # the deprecated alias of reserve


def test_touch_gives_a_new_reservation_and_release_puts_it_back(queue: Queue) -> None:
    queue.post("x")
    (m,) = queue.reserve(timeout=30)["messages"]
    touched = queue.touch(m["id"], m["reservation_id"], timeout=30)
    assert touched["msg"] == "Touched"
    assert touched["reservation_id"] != m["reservation_id"]
    assert status_of(lambda: queue.delete(m["id"], m["reservation_id"])) == 403
    assert queue.release(m["id"], touched["reservation_id"])["msg"] == "Released"
    (again,) = queue.reserve()["messages"]
    assert again["id"] == m["id"]
    assert again["reserved_count"] == 3
    queue.release(again["id"], again["reservation_id"], delay=60)
    assert queue.reserve()["messages"] == []


def test_expired_reservation_is_refused_and_the_message_comes_back(
    queue: Queue,
) -> None:
    queue.post("slow")
    (m,) = queue.reserve(timeout=1)["messages"]
    back: list[dict[str, object]] = []
    wait_until(lambda: bool(back.extend(queue.reserve(timeout=30)["messages"]) or back))
    assert back[0]["id"] == m["id"]
    assert status_of(lambda: queue.delete(m["id"], m["reservation_id"])) == 403


def test_pop_peek_get_and_info(queue: Queue) -> None:
    ids = queue.post("one", "two")["ids"]
    peeked = queue.peek(max=2)["messages"]
    assert [p["id"] for p in peeked] == ids
    assert queue.peek()["messages"][0]["body"] == "one"
    message = queue.get_message_by_id(ids[1])
    assert message == {"id": ids[1], "body": "two", "reserved_count": 0}
    popped = queue.reserve(max=1, delete=True)["messages"]
    assert popped[0]["id"] == ids[0]
    info = queue.info()
    assert info["name"] == queue.name
    assert info["size"] == 1
    assert queue.id() == info["id"]


def test_delete_multiple_and_clear(queue: Queue) -> None:
    ids = queue.post("1", "2", "3", "4")["ids"]
    assert queue.delete_multiple(ids=ids[:2])["msg"] == "Deleted"
    reserved = queue.reserve(max=2)
    assert queue.delete_multiple(messages=reserved)["msg"] == "Deleted"
    assert queue.size() == 0
    queue.post("5", "6")
    assert queue.clear()["msg"] == "Cleared"
    assert queue.size() == 0


def test_long_poll_returns_as_soon_as_a_message_arrives(queue: Queue) -> None:
    posted = threading.Event()

    def post_later() -> None:
        posted.wait(5)
        queue.post("late")

    thread = threading.Thread(target=post_later)
    thread.start()
    try:
        result: dict[str, object] = {}
        waiter = threading.Thread(target=lambda: result.update(queue.reserve(wait=20)))
        waiter.start()
        posted.set()
        waiter.join(25)
        assert [m["body"] for m in result["messages"]] == ["late"]  # type: ignore[union-attr]
    finally:
        thread.join()


def test_create_update_and_delete_queues(mq: IronMQ) -> None:
    name = f"cfg-{uuid.uuid4().hex[:8]}"
    created = mq.create_queue(name, {"message_timeout": 120})
    assert created["message_timeout"] == 120
    assert created["type"] == "pull"
    assert (
        mq.update_queue(name, {"message_expiration": 3600})["message_expiration"]
        == 3600
    )
    q = mq.queue(name)
    updated = q.update(
        {"dead_letter": {"queue_name": f"{name}-dlq", "max_reservations": 3}}
    )
    assert updated["dead_letter"]["max_reservations"] == 3
    assert q.delete_queue()["msg"] == "Deleted"
    assert status_of(q.info) == 404
    assert status_of(lambda: mq.queue("never-made").reserve()) == 404


def test_alerts_add_update_remove(queue: Queue) -> None:
    target = f"{queue.name}-alerts"
    added = queue.add_alerts({"type": "fixed", "trigger": 10, "queue": target})
    assert [a["trigger"] for a in added["alerts"]] == [10]
    assert (
        status_of(
            lambda: queue.add_alerts({"type": "fixed", "trigger": 10, "queue": target})
        )
        == 400
    )
    replaced = queue.update_alerts(
        {"type": "progressive", "trigger": 5, "queue": target}
    )
    (alert,) = replaced["alerts"]
    assert alert["type"] == "progressive"
    assert queue.remove_alerts(alert["id"])["msg"] == "Alerts were deleted."
    assert "alerts" not in queue.info()


def test_push_queue_subscribers_and_statuses(mq: IronMQ) -> None:
    name = f"push-{uuid.uuid4().hex[:8]}"
    sub = {"name": "first", "url": "http://push-target.invalid/hook"}
    created = mq.create_queue(name, {"push": {"subscribers": [sub]}})
    assert created["type"] == "multicast"
    q = mq.queue(name)
    second = {"name": "second", "url": "http://push-target.invalid/other"}
    assert q.add_subscribers(second)["msg"] == "Updated"
    assert q.remove_subscribers("first")["msg"] == "Updated"
    assert q.replace_subscribers(sub, second)["msg"] == "Updated"
    assert [s["name"] for s in q.info()["push"]["subscribers"]] == ["first", "second"]
    (message_id,) = q.post("pushed")["ids"]
    statuses = q.get_message_push_statuses(message_id)["subscribers"]
    assert {s["name"] for s in statuses} == {"first", "second"}
    assert all("status" in s for s in statuses)


def test_deprecated_helpers(mq: IronMQ, queue: Queue) -> None:
    assert mq.getQueueDetails(queue.name)["name"] == queue.name
    mq.postMessage(queue.name, ["old style"])
    (m,) = mq.getMessage(queue.name)["messages"]
    assert m["body"] == "old style"
    queue.release(m["id"], m["reservation_id"])
    mq.deleteMessage(queue.name, m["id"])
    assert mq.clearQueue(queue.name)["msg"] == "Cleared"


def test_queue_listing_is_broken_in_the_client_but_served(
    mq: IronMQ, queue: Queue, iron_env: Running
) -> None:
    with pytest.raises(AttributeError, match="urlencode"):
        mq.queues()
    with pytest.raises(AttributeError, match="urlencode"):
        mq.getQueues()
    resp = httpx.get(
        f"{iron_env.server.url}/3/projects/{iron_env.project.id}/queues",
        params={"prefix": queue.name, "oauth": iron_env.project.token},
    )
    assert resp.json() == {"queues": [{"name": queue.name}]}


def test_webhook_posts_the_raw_body(queue: Queue, iron_env: Running) -> None:
    resp = httpx.post(
        f"{iron_env.server.url}/3/projects/{iron_env.project.id}/queues/{queue.name}/webhook",
        params={"oauth": iron_env.project.token},
        content=b"raw hook body",
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status_code == 201
    assert queue.peek()["messages"][0]["body"] == "raw hook body"


def test_another_project_cannot_see_the_queue(queue: Queue, iron_env: Running) -> None:
    (message_id,) = queue.post("private")["ids"]
    other = IronMQ(project_id=iron_env.other.id, token=iron_env.other.token).queue(
        queue.name
    )
    assert status_of(other.info) == 404
    assert status_of(lambda: other.get_message_by_id(message_id)) == 404
    wrong = IronMQ(project_id=iron_env.project.id, token=iron_env.other.token).queue(
        queue.name
    )
    assert status_of(wrong.info) == 401
