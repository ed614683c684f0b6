"""Push rules: status after each try, when a message is done, headers, address guard."""

from __future__ import annotations

import json

import pytest

from workhorse.domain.push import (
    Attempt,
    PushStatus,
    address_blocked,
    after_attempt,
    due,
    error_message_body,
    failed,
    host_allowed,
    initial_statuses,
    is_done,
    parse_allow_list,
    parse_internal_url,
    request_headers,
)
from workhorse.domain.queue import QueueType, Subscriber
from workhorse.errors import InvalidInput

SUBS = [Subscriber("a", "http://a"), Subscriber("b", "http://b")]


def test_success_202_and_failures() -> None:
    a, b = initial_statuses(SUBS, retries=1)
    assert a.status is PushStatus.QUEUED
    assert a.retries_remaining == 1
    ok = after_attempt(a, Attempt(200), now=5.0, reservation_id="r")
    assert (ok.status, ok.tries, ok.status_code, ok.last_try_at) == (
        PushStatus.DELETED,
        1,
        200,
        5.0,
    )
    later = after_attempt(b, Attempt(202), now=5.0, reservation_id="r")
    assert later.status is PushStatus.RESERVED
    assert later.reservation_id == "r"
    once = after_attempt(b, Attempt(500, "boom"), now=5.0, reservation_id="r")
    assert once.status is PushStatus.RETRYING
    assert once.retries_remaining == 0
    assert once.error == "boom"
    twice = after_attempt(once, Attempt(None, "refused"), now=65.0, reservation_id="r2")
    assert twice.status is PushStatus.ERROR
    assert twice.tries == 2
    assert twice.status_code is None


def test_unacknowledged_202_is_tried_again() -> None:
    a, b = initial_statuses(SUBS, retries=3)
    a = after_attempt(a, Attempt(200), now=0, reservation_id="r")
    b = after_attempt(b, Attempt(202), now=0, reservation_id="r")
    assert [s.name for s in due([a, b])] == ["b"]


def test_multicast_is_done_when_every_subscriber_is_final() -> None:
    a, b = initial_statuses(SUBS, retries=0)
    a = after_attempt(a, Attempt(200), now=0, reservation_id="r")
    assert not is_done(QueueType.MULTICAST, [a, b])
    b = after_attempt(b, Attempt(404), now=0, reservation_id="r")
    assert is_done(QueueType.MULTICAST, [a, b])
    assert [s.name for s in failed(QueueType.MULTICAST, [a, b])] == ["b"]


def test_unicast_is_done_when_one_subscriber_took_it_or_all_gave_up() -> None:
    a, b = initial_statuses(SUBS, retries=0)
    a_failed = after_attempt(a, Attempt(500), now=0, reservation_id="r")
    b_ok = after_attempt(b, Attempt(201), now=0, reservation_id="r")
    assert is_done(QueueType.UNICAST, [a_failed, b_ok])
    assert failed(QueueType.UNICAST, [a_failed, b_ok]) == []
    b_failed = after_attempt(b, Attempt(500), now=0, reservation_id="r")
    assert is_done(QueueType.UNICAST, [a_failed, b_failed])
    assert len(failed(QueueType.UNICAST, [a_failed, b_failed])) == 2


def test_error_message_shape() -> None:
    a = after_attempt(
        initial_statuses(SUBS, 0)[0], Attempt(500, "no"), now=0, reservation_id="r"
    )
    body = json.loads(error_message_body("m1", "hello", {"X-A": "1"}, [a]))
    assert body == {
        "source_msg_id": "m1",
        "body": "hello",
        "headers": {"X-A": "1"},
        "subscribers": [{"name": "a", "url": "http://a", "code": 500, "msg": "no"}],
    }


def test_request_headers_only_let_two_defaults_be_overridden() -> None:
    headers = request_headers(
        subscriber_headers={
            "Content-Type": "application/json",
            "Iron-Message-Id": "forged",
            "X-S": "s",
        },
        push_headers={"X-M": "m", "user-agent": "mine"},
        message_id="m1",
        reservation_id="r1",
        subscriber_name="a",
        message_url="/3/projects/p/queues/q/messages/m1",
    )
    assert headers["Content-Type"] == "application/json"
    assert headers["user-agent"] == "mine"
    assert "User-Agent" not in headers
    assert headers["Iron-Message-Id"] == "m1"
    assert headers["Iron-Reservation-Id"] == "r1"
    assert headers["X-S"] == "s"
    assert headers["X-M"] == "m"


def test_internal_urls() -> None:
    t = parse_internal_url("ironmq:///other")
    assert (t.kind, t.project_id, t.name) == ("ironmq", None, "other")
    t = parse_internal_url("ironworker://proj:tok@host:8080/resize")
    assert (t.kind, t.project_id, t.name) == ("ironworker", "proj", "resize")
    with pytest.raises(InvalidInput):
        parse_internal_url("ironmq://host/")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address to block, not to bind
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_local_and_private_addresses_are_blocked(address: str) -> None:
    assert address_blocked(address)


def test_public_addresses_pass() -> None:
    assert not address_blocked("93.184.216.34")
    assert host_allowed("example.com", ["93.184.216.34"], parse_allow_list([])) is None


def test_allow_list_lifts_the_guard() -> None:
    assert host_allowed("localhost", ["127.0.0.1"], parse_allow_list([])) is not None
    assert (
        host_allowed("localhost", ["127.0.0.1"], parse_allow_list(["127.0.0.0/8"]))
        is None
    )
    assert (
        host_allowed(
            "localhost", ["127.0.0.1", "10.0.0.1"], parse_allow_list(["127.0.0.1"])
        )
        is not None
    )
    assert (
        host_allowed(
            "hooks.internal", ["10.0.0.1"], parse_allow_list(["hooks.internal"])
        )
        is None
    )
    assert host_allowed("x", ["10.0.0.1"], parse_allow_list(["*"])) is None
    assert host_allowed("x", [], parse_allow_list([])) is not None
