"""Queue management and alerts on both backends: create, update, list, delete, fire."""

from __future__ import annotations

import json

import pytest

from workhorse.errors import InvalidInput, NotFound
from workhorse.queues import MessageQueues, check_alerts
from workhorse.storage import Storage

NOW = 1_800_000_000.0
PUSH = {"subscribers": [{"name": "a", "url": "https://hooks.example.com/a"}]}


@pytest.fixture
def mq(storage: Storage) -> MessageQueues:
    return MessageQueues(storage)


def test_create_get_update_delete(mq: MessageQueues) -> None:
    created = mq.create_queue("orders", {"message_timeout": 30})
    assert (created.name, created.settings.message_timeout, created.project_id) == (
        "orders",
        30,
        "default",
    )
    updated = mq.update_queue("orders", {"message_expiration": 3600})
    assert (updated.settings.message_timeout, updated.settings.message_expiration) == (
        30,
        3600,
    )
    assert updated.id == created.id
    again = mq.create_queue(
        "orders", {"message_timeout": 45}
    )  # PUT on an existing queue updates it
    assert again.settings.message_timeout == 45
    assert again.id == created.id
    info = mq.get_queue("orders").to_dict()
    assert info["size"] == 0
    assert info["total_messages"] == 0
    assert info["id"] == created.id
    mq.post("orders", ["x"])
    mq.delete_queue("orders")
    with pytest.raises(NotFound, match="Queue not found"):
        mq.get_queue("orders")
    mq.post("orders", ["y"])  # posting again creates a fresh queue
    assert mq.get_queue("orders").total_messages == 1


def test_queues_are_per_project(mq: MessageQueues) -> None:
    mq.post("shared-name", ["mine"])
    other = mq.with_project("other")
    with pytest.raises(NotFound):
        other.reserve("shared-name")
    other.post("shared-name", ["theirs"])
    assert [m.body for m in mq.reserve("shared-name")] == ["mine"]
    assert [m.body for m in other.reserve("shared-name")] == ["theirs"]


def test_listing_pages_by_name_with_prefix(mq: MessageQueues) -> None:
    for name in ("b", "a", "ab", "c", "B", "abc"):
        mq.create_queue(name)
    names = [q.name for q in mq.list_queues()]
    assert names == ["B", "a", "ab", "abc", "b", "c"]  # byte order
    assert [q.name for q in mq.list_queues(per_page=2)] == ["B", "a"]
    assert [q.name for q in mq.list_queues(previous="a", per_page=2)] == ["ab", "abc"]
    assert [q.name for q in mq.list_queues(previous="aa")] == [
        "ab",
        "abc",
        "b",
        "c",
    ]  # need not exist
    assert [q.name for q in mq.list_queues(prefix="ab")] == ["ab", "abc"]
    assert [q.name for q in mq.list_queues(prefix="ab", previous="ab")] == ["abc"]
    with pytest.raises(InvalidInput):
        mq.list_queues(per_page=101)


def test_push_queue_rules(mq: MessageQueues) -> None:
    q = mq.create_queue("hooks", {"push": PUSH})
    assert q.settings.type.value == "multicast"
    q = mq.create_queue("hooks", {"push": {"retries": 7}})  # PUT keeps the subscribers
    assert q.settings.push is not None
    assert (q.settings.push.retries, len(q.settings.push.subscribers)) == (7, 1)
    with pytest.raises(InvalidInput):
        mq.update_queue("hooks", {"type": "pull"})
    with pytest.raises(InvalidInput, match=r"Push queues do not support alerts\."):
        mq.add_alerts("hooks", [{"type": "fixed", "trigger": 1, "queue": "x"}])
    with pytest.raises(InvalidInput):
        mq.update_queue("hooks", {"dead_letter": {"queue_name": "dlq"}})
    mq.create_queue("plain")
    with pytest.raises(InvalidInput):
        mq.update_queue("plain", {"push": PUSH})
    with pytest.raises(InvalidInput):
        mq.add_subscribers("plain", [{"name": "b", "url": "http://b.example"}])


def test_subscribers_are_added_replaced_and_removed(mq: MessageQueues) -> None:
    mq.create_queue("hooks", {"push": PUSH})
    q = mq.add_subscribers("hooks", [{"name": "b", "url": "https://b.example/h"}])
    assert [s.name for s in q.settings.push.subscribers] == ["a", "b"]  # type: ignore[union-attr]
    q = mq.add_subscribers("hooks", [{"name": "a", "url": "https://a2.example/h"}])
    assert q.settings.push.subscribers[0].url == "https://a2.example/h"  # type: ignore[union-attr]
    q = mq.replace_subscribers("hooks", [{"name": "c", "url": "ironmq:///copy"}])
    assert [s.name for s in q.settings.push.subscribers] == ["c"]  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        mq.remove_subscribers("hooks", ["c"])


def test_alerts_are_added_replaced_and_removed(mq: MessageQueues) -> None:
    mq.create_queue("jobs")
    q = mq.add_alerts(
        "jobs", [{"type": "fixed", "direction": "asc", "trigger": 10, "queue": "ctl"}]
    )
    [alert] = q.settings.alerts
    assert alert.id
    assert q.to_dict()["alerts"][0]["trigger"] == 10
    with pytest.raises(InvalidInput, match="duplicates"):
        mq.add_alerts(
            "jobs",
            [{"type": "fixed", "direction": "asc", "trigger": 10, "queue": "other"}],
        )
    q = mq.update_queue(
        "jobs", {"alerts": [{"type": "progressive", "trigger": 5, "queue": "ctl"}]}
    )
    assert len(q.settings.alerts) == 2  # PATCH adds
    q = mq.replace_alerts("jobs", [{"type": "fixed", "trigger": 3, "queue": "ctl"}])
    assert [a.trigger for a in q.settings.alerts] == [3]
    q = mq.remove_alerts("jobs", [q.settings.alerts[0].id])
    assert q.settings.alerts == ()
    assert "alerts" not in q.to_dict()


def _alerts(mq: MessageQueues, queue: str, now: float) -> list[dict]:  # type: ignore[type-arg]
    return (
        [json.loads(m.body) for m in mq.reserve(queue, 100, delete=True, now=now)]
        if _exists(mq, queue)
        else []
    )


def _exists(mq: MessageQueues, name: str) -> bool:
    try:
        mq.get_queue(name)
    except NotFound:
        return False
    return True


def test_fixed_alert_fires_once_when_the_size_crosses_its_trigger(
    mq: MessageQueues, storage: Storage
) -> None:
    mq.create_queue(
        "jobs",
        {
            "alerts": [
                {"type": "fixed", "direction": "asc", "trigger": 3, "queue": "ctl"}
            ]
        },
    )
    mq.post("jobs", ["1", "2"], now=NOW)
    assert check_alerts(storage, now=NOW) == 0
    mq.post("jobs", ["3", "4"], now=NOW)
    assert check_alerts(storage, now=NOW + 1) == 1
    assert check_alerts(storage, now=NOW + 2) == 0  # still above: no new crossing
    [alert] = _alerts(mq, "ctl", NOW + 2)
    assert alert["source_queue"] == "jobs"
    assert alert["queue_size"] == 4
    assert (alert["alert_type"], alert["alert_direction"], alert["alert_trigger"]) == (
        "fixed",
        "asc",
        3,
    )
    assert alert["alert_id"] == mq.get_queue("jobs").settings.alerts[0].id
    assert alert["created_at"].endswith("Z")


def test_progressive_alert_fires_at_each_multiple_and_snooze_holds_it(
    mq: MessageQueues, storage: Storage
) -> None:
    mq.create_queue(
        "jobs",
        {
            "alerts": [
                {
                    "type": "progressive",
                    "direction": "asc",
                    "trigger": 2,
                    "queue": "ctl",
                    "snooze": 60,
                }
            ]
        },
    )
    mq.post("jobs", ["a", "b"], now=NOW)
    assert check_alerts(storage, now=NOW) == 1
    mq.post("jobs", ["c", "d"], now=NOW)
    assert check_alerts(storage, now=NOW + 10) == 0  # snoozed
    mq.post("jobs", ["e", "f"], now=NOW)
    assert check_alerts(storage, now=NOW + 61) == 1
    assert [a["queue_size"] for a in _alerts(mq, "ctl", NOW + 61)] == [2, 6]


def test_descending_alert_fires_as_the_backlog_drains(
    mq: MessageQueues, storage: Storage
) -> None:
    mq.post("jobs", [str(i) for i in range(5)], now=NOW)
    mq.add_alerts(
        "jobs", [{"type": "fixed", "direction": "desc", "trigger": 2, "queue": "ctl"}]
    )
    assert check_alerts(storage, now=NOW) == 0
    mq.reserve("jobs", 3, delete=True, now=NOW)
    assert check_alerts(storage, now=NOW + 1) == 1
    [alert] = _alerts(mq, "ctl", NOW + 1)
    assert (alert["alert_direction"], alert["queue_size"]) == ("desc", 2)


def test_a_second_runner_does_not_fire_the_same_crossing_again(
    mq: MessageQueues,
) -> None:
    from workhorse.storage import open_storage

    mq.create_queue(
        "jobs", {"alerts": [{"type": "fixed", "trigger": 1, "queue": "ctl"}]}
    )
    mq.post("jobs", ["x"], now=NOW)
    other = open_storage(mq.storage.settings)
    try:
        fired = check_alerts(mq.storage, now=NOW) + check_alerts(other, now=NOW)
    finally:
        other.close()
    assert fired == 1
    assert len(_alerts(mq, "ctl", NOW)) == 1
