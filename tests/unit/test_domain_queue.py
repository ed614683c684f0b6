"""Queue settings: defaults, validation of creates and updates, wire shape."""

from __future__ import annotations

import itertools

import pytest

from workhorse.domain.queue import (
    DUPLICATE_ALERT,
    PUSH_NO_ALERTS,
    QueueSettings,
    QueueType,
    add_subscribers,
    check_queue_links,
    parse_settings,
    remove_subscribers,
)
from workhorse.errors import InvalidInput

_ids = itertools.count(1)


def new_id() -> str:
    return f"id{next(_ids)}"


def parse(
    data: dict | None, current: QueueSettings | None = None, **kw: bool
) -> QueueSettings:  # type: ignore[type-arg]
    return parse_settings(data, current=current, new_id=new_id, **kw)


PUSH = {"subscribers": [{"name": "a", "url": "https://a.example/hook"}]}


def test_defaults() -> None:
    s = parse({})
    assert (s.type, s.message_timeout, s.message_expiration) == (
        QueueType.PULL,
        60,
        604_800,
    )
    assert s.push is None
    assert s.dead_letter is None
    assert s.alerts == ()


def test_push_settings_without_a_type_make_a_multicast_queue() -> None:
    s = parse({"push": PUSH})
    assert s.type is QueueType.MULTICAST
    assert s.push is not None
    assert (
        s.push.retries,
        s.push.retries_delay,
        s.push.error_queue,
    ) == (3, 60, None)
    assert s.push.subscribers[0].name == "a"


def test_push_queues_need_subscribers_and_valid_urls() -> None:
    for bad in (
        {"type": "unicast"},
        {"push": {"subscribers": []}},
        {"push": {"subscribers": [{"url": "ftp://x/y"}]}},
        {"push": {"subscribers": [{"url": "ironmq:///"}]}},
        {
            "push": {
                "subscribers": [
                    {"name": "a", "url": "http://x"},
                    {"name": "a", "url": "http://y"},
                ]
            }
        },
        {"push": {**PUSH, "retries": 101}},
        {"push": {**PUSH, "retries_delay": 2}},
    ):
        with pytest.raises(InvalidInput):
            parse(bad)


def test_type_is_fixed_once_created() -> None:
    current = parse({"push": PUSH})
    with pytest.raises(InvalidInput):
        parse({"type": "pull"}, current)
    assert parse({"type": "multicast"}, current).type is QueueType.MULTICAST
    with pytest.raises(InvalidInput):
        parse({"push": PUSH}, parse({}))  # subscribers on a pull queue


def test_updates_keep_what_is_left_out() -> None:
    current = parse(
        {
            "message_timeout": 30,
            "dead_letter": {"queue_name": "dlq", "max_reservations": 3},
        }
    )
    updated = parse({"message_expiration": 100}, current)
    assert (updated.message_timeout, updated.message_expiration) == (30, 100)
    assert updated.dead_letter is not None
    assert updated.dead_letter.max_reservations == 3
    assert parse({"dead_letter": {"queue_name": ""}}, current).dead_letter is None


def test_dead_letters_are_for_pull_queues_with_bounded_reservations() -> None:
    assert (
        parse({"dead_letter": {"queue_name": "dlq"}}).dead_letter.max_reservations == 10
    )  # type: ignore[union-attr]
    for bad in (
        {"dead_letter": {"queue_name": "dlq", "max_reservations": 0}},
        {"dead_letter": {"queue_name": "dlq", "max_reservations": 1001}},
        {"push": PUSH, "dead_letter": {"queue_name": "dlq"}},
    ):
        with pytest.raises(InvalidInput):
            parse(bad)


def test_settings_ranges() -> None:
    for bad in (
        {"message_timeout": 86_401},
        {"message_expiration": 2_592_001},
        {"message_timeout": 1.5},
        {"type": "fanout"},
        {"message_timeout": True},
    ):
        with pytest.raises(InvalidInput):
            parse(bad)


def test_alerts_are_added_on_update_and_duplicates_refused() -> None:
    alert = {"type": "fixed", "direction": "asc", "trigger": 10, "queue": "ctl"}
    s = parse({"alerts": [alert]})
    assert s.alerts[0].id
    assert s.alerts[0].snooze == 0
    s2 = parse({"alerts": [{**alert, "trigger": 20}]}, s)
    assert [a.trigger for a in s2.alerts] == [10, 20]
    with pytest.raises(InvalidInput, match=DUPLICATE_ALERT):
        parse({"alerts": [alert]}, s2)
    assert [
        a.trigger for a in parse({"alerts": [alert]}, s2, replace_alerts=True).alerts
    ] == [10]
    with pytest.raises(InvalidInput, match=PUSH_NO_ALERTS):
        parse({"push": PUSH, "alerts": [alert]})
    with pytest.raises(InvalidInput):
        parse({"alerts": [{**alert, "type": "sometimes"}]})
    with pytest.raises(InvalidInput):
        parse({"alerts": [{"trigger": 5}]})


def test_a_queue_cannot_feed_itself() -> None:
    with pytest.raises(InvalidInput):
        check_queue_links("q", parse({"dead_letter": {"queue_name": "q"}}))
    with pytest.raises(InvalidInput):
        check_queue_links("q", parse({"alerts": [{"trigger": 1, "queue": "q"}]}))
    with pytest.raises(InvalidInput):
        check_queue_links("q", parse({"push": {**PUSH, "error_queue": "q"}}))


def test_subscriber_changes() -> None:
    s = parse({"push": PUSH})
    s = add_subscribers(
        s,
        [
            parse(
                {"push": {"subscribers": [{"name": "b", "url": "http://b"}]}}
            ).push.subscribers[0]
        ],
        replace_all=False,
    )  # type: ignore[union-attr]
    assert [x.name for x in s.push.subscribers] == ["a", "b"]  # type: ignore[union-attr]
    s = remove_subscribers(s, ["a"])
    assert [x.name for x in s.push.subscribers] == ["b"]  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        remove_subscribers(s, ["b"])  # a push queue keeps at least one


def test_wire_shape() -> None:
    s = parse({"push": {**PUSH, "error_queue": "errs"}})
    wire = s.to_dict()
    assert wire["type"] == "multicast"
    assert wire["push"]["subscribers"] == [
        {"name": "a", "url": "https://a.example/hook", "headers": {}}
    ]
    assert wire["push"]["error_queue"] == "errs"
    assert "alerts" not in wire
    assert "dead_letter" not in wire
