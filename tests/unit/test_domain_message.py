"""Pure message rules: validation, reservations, dead letters, alert crossings."""

from __future__ import annotations

import math

import pytest

from workhorse.domain.message import (
    MAX_DELAY_SECONDS,
    Message,
    NewMessage,
    alert_crossed,
    alert_fires,
    is_expired,
    reservation_expires_at,
    reservation_holds,
    resolve_timeout,
    should_dead_letter,
    validate_body,
    validate_delay,
    validate_new_messages,
    validate_push_headers,
    validate_queue_name,
    validate_reserve,
    validate_timeout,
)
from workhorse.errors import InvalidInput, PayloadTooLarge


def test_queue_names_are_checked() -> None:
    assert validate_queue_name("orders-2024.eu_west:1") == "orders-2024.eu_west:1"
    assert validate_queue_name("café ✓") == "café ✓"
    for bad in ("", "a/b", "x" * 256, "tab\there", "nul\x00", "del\x7f", None, 7):
        with pytest.raises(InvalidInput):
            validate_queue_name(bad)


def test_body_limit_counts_utf8_bytes() -> None:
    assert validate_body("é" * 5, 10) == "é" * 5
    with pytest.raises(PayloadTooLarge):
        validate_body("é" * 6, 11)
    with pytest.raises(InvalidInput):
        validate_body(b"bytes", 100)
    with pytest.raises(InvalidInput):
        validate_body("lone \ud800 surrogate", 100)
    with pytest.raises(InvalidInput):
        validate_body("nul \x00 inside", 100)


@pytest.mark.parametrize(
    "delay", [-1, MAX_DELAY_SECONDS + 1, "5", True, math.nan, math.inf]
)
def test_bad_delays_are_refused(delay: object) -> None:
    with pytest.raises(InvalidInput):
        validate_delay(delay)


def test_delays_up_to_seven_days_are_accepted() -> None:
    assert validate_delay(None) == 0
    assert validate_delay(0) == 0
    assert validate_delay(MAX_DELAY_SECONDS) == MAX_DELAY_SECONDS
    assert validate_delay(1.5) == 1.5


def test_reserve_arguments() -> None:
    request = validate_reserve(100, None, 30)
    assert (request.n, request.timeout, request.wait) == (100, None, 30)
    assert validate_reserve(1, 0, None).timeout is None  # 0 means the queue's default
    assert validate_reserve(1, 2.5, 0).timeout == 3
    for n, timeout, wait in [
        (0, None, 0),
        (101, None, 0),
        ("1", None, 0),
        (True, None, 0),
        (1, -5, 0),
        (1, 86_401, 0),
        (1, None, 31),
        (1, None, -1),
    ]:
        with pytest.raises(InvalidInput):
            validate_reserve(n, timeout, wait)


def test_small_timeouts_are_allowed() -> None:
    assert validate_timeout(1) == 1
    assert validate_timeout(3) == 3


def test_push_header_rules() -> None:
    assert validate_push_headers({"X-Trace": "abc"}) == {"X-Trace": "abc"}
    assert validate_push_headers({}) is None
    for bad in [
        {f"H{i}": "v" for i in range(6)},
        {"": "v"},
        {"X": ""},
        {"x" * 65: "v"},
        {"X": "v" * 1025},
        {"Content-Type": "text/json"},
        {"iron-message-id": "x"},
        {"X": "a\r\nInjected: yes"},
        ["not", "a", "mapping"],
    ]:
        with pytest.raises(InvalidInput):
            validate_push_headers(bad)


def test_a_post_is_one_to_one_hundred_messages() -> None:
    assert len(validate_new_messages([NewMessage("a")] * 100, 10)) == 100
    with pytest.raises(InvalidInput):
        validate_new_messages([], 10)
    with pytest.raises(InvalidInput):
        validate_new_messages([NewMessage("a")] * 101, 10)


def test_reservation_expiry() -> None:
    expires = reservation_expires_at(100.0, 30)
    assert expires == 130.0
    assert reservation_holds(expires, 129.999)
    assert not reservation_holds(expires, 130.0)
    assert not reservation_holds(None, 0)
    assert resolve_timeout(None, 60) == 60
    assert resolve_timeout(5, 60) == 5


def test_dead_letter_after_exactly_max_reservations() -> None:
    assert not should_dead_letter(0, 1)
    assert should_dead_letter(1, 1)  # delivered at most once
    assert not should_dead_letter(9, 10)
    assert should_dead_letter(10, 10)
    assert not should_dead_letter(1000, None)


def test_expiration() -> None:
    assert not is_expired(10.0, 9.9)
    assert is_expired(10.0, 10.0)


def test_fixed_alerts_fire_on_crossing_only() -> None:
    assert alert_crossed("fixed", "asc", 10, 9, 10)
    assert alert_crossed("fixed", "asc", 10, 0, 50)
    assert not alert_crossed("fixed", "asc", 10, 10, 11)
    assert not alert_crossed("fixed", "asc", 10, 12, 9)
    assert alert_crossed("fixed", "desc", 10, 11, 10)
    assert alert_crossed("fixed", "desc", 10, 50, 0)
    assert not alert_crossed("fixed", "desc", 10, 10, 5)
    assert not alert_crossed("fixed", "desc", 10, 5, 20)


def test_progressive_alerts_fire_at_every_multiple() -> None:
    assert alert_crossed("progressive", "asc", 10, 9, 10)
    assert alert_crossed("progressive", "asc", 10, 19, 20)
    assert not alert_crossed("progressive", "asc", 10, 10, 19)
    assert alert_crossed("progressive", "asc", 10, 5, 35)
    assert alert_crossed("progressive", "desc", 10, 21, 20)
    assert alert_crossed("progressive", "desc", 10, 25, 15)
    assert not alert_crossed("progressive", "desc", 10, 20, 11)
    assert not alert_crossed(
        "progressive", "desc", 10, 9, 0
    )  # 0 is not a trigger level
    assert not alert_crossed("progressive", "desc", 10, 15, 25)


def test_snooze_suppresses_alerts_fired_recently() -> None:
    common = {
        "kind": "fixed",
        "direction": "asc",
        "trigger": 5,
        "before": 0,
        "after": 5,
    }
    assert alert_fires(**common, snooze=60, last_fired_at=None, now=1000.0)
    assert not alert_fires(**common, snooze=60, last_fired_at=950.0, now=1000.0)
    assert alert_fires(**common, snooze=60, last_fired_at=940.0, now=1000.0)
    assert not alert_fires(
        **{**common, "before": 5}, snooze=0, last_fired_at=None, now=1000.0
    )


def test_message_wire_shape() -> None:
    reserved = Message(id="1", body="b", reserved_count=1, reservation_id="r")
    assert reserved.to_dict() == {
        "id": "1",
        "body": "b",
        "reserved_count": 1,
        "reservation_id": "r",
    }
    assert "reservation_id" not in Message(id="1", body="b", reserved_count=0).to_dict()
