"""Messages (IronMQ v3 semantics): what a valid post or reserve is, when a
reservation holds, when a message is dead-lettered, and when an alert fires.

Every rule here is a pure function of its inputs; times are epoch seconds and
`now` is always passed in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from workhorse.errors import InvalidInput, PayloadTooLarge

MAX_PER_CALL = 100
MAX_DELAY_SECONDS = 604_800
MAX_WAIT_SECONDS = 30
MAX_TIMEOUT_SECONDS = 86_400
MAX_QUEUE_NAME_LENGTH = 255
MAX_PUSH_HEADERS = 5
MAX_PUSH_HEADER_NAME_BYTES = 64
MAX_PUSH_HEADER_VALUE_BYTES = 1024
# Push headers a message may not set: the pusher owns them.
RESERVED_PUSH_HEADERS = frozenset(
    name.lower()
    for name in (
        "Content-Type",
        "User-Agent",
        "Iron-Message-Id",
        "Iron-Reservation-Id",
        "Iron-Subscriber-Name",
        "Iron-Subscriber-Message-Url",
    )
)


class MessageState(StrEnum):
    """Where a stored message is. A reservation past its time counts as available."""

    READY = "ready"
    DELAYED = "delayed"
    RESERVED = "reserved"


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message as a producer posts it.

    Attributes:
        body: the message text (usually JSON); its UTF-8 size is limited.
        delay: seconds before it may be reserved (0 to 7 days).
        push_headers: extra HTTP headers for push-queue deliveries.
    """

    body: str
    delay: float = 0
    push_headers: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message as a consumer sees it.

    Attributes:
        id: the message id (a string, stable across dead-lettering).
        body: the text that was posted.
        reserved_count: how many times it was reserved (touches count too).
        reservation_id: the reservation this copy was handed out under; only set
            on messages returned by reserve (and by touch through the SDK).
        reserved_until: when that reservation runs out (database clock).
        push_headers: headers posted with it, for push deliveries.
        queue_name: the queue it is in.
        created_at: when it was posted.
    """

    id: str
    body: str
    reserved_count: int
    reservation_id: str | None = None
    reserved_until: float | None = None
    push_headers: dict[str, str] | None = None
    queue_name: str = ""
    created_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The IronMQ wire shape (`reservation_id` only when reserved)."""
        out: dict[str, Any] = {
            "id": self.id,
            "body": self.body,
            "reserved_count": self.reserved_count,
        }
        if self.reservation_id is not None:
            out["reservation_id"] = self.reservation_id
        return out


@dataclass(frozen=True, slots=True)
class ReserveRequest:
    """A validated reserve call. `timeout` None means the queue's default."""

    n: int
    timeout: int | None
    wait: float


# -- validation ----------------------------------------------------------------------


def _number(value: object, what: str, low: float, high: float) -> float:
    """A finite number (not a bool) within [low, high], else InvalidInput."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise InvalidInput(
            f"{what} must be a number of seconds from {low:g} to {high:g}"
        )
    return float(value)


_FORBIDDEN_IN_NAME = re.compile(r"[/\x00-\x1f\x7f]")


def validate_queue_name(name: object) -> str:
    """A queue name: 1-255 characters, no '/' and no control characters."""
    if not isinstance(name, str) or not name or len(name) > MAX_QUEUE_NAME_LENGTH:
        raise InvalidInput(f"queue name must be 1-{MAX_QUEUE_NAME_LENGTH} characters")
    if _FORBIDDEN_IN_NAME.search(name):
        raise InvalidInput("queue name may not contain '/' or control characters")
    return name


def validate_body(body: object, max_bytes: int) -> str:
    """A message body: a string of at most `max_bytes` UTF-8 bytes."""
    if not isinstance(body, str):
        raise InvalidInput("message body must be a string (encode JSON yourself)")
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput("message body is not valid Unicode text") from None
    if "\x00" in body:  # PostgreSQL text cannot hold it; refused on every backend
        raise InvalidInput("message body may not contain NUL characters")
    if size > max_bytes:
        raise PayloadTooLarge(f"message body is {size} bytes; the limit is {max_bytes}")
    return body


def validate_delay(delay: object) -> float:
    """A delay in seconds, 0 to 7 days."""
    if delay is None:
        return 0.0
    return _number(delay, "delay", 0, MAX_DELAY_SECONDS)


def validate_push_headers(headers: object) -> dict[str, str] | None:
    """Push headers: at most 5, short names and values, none of the reserved names."""
    if headers is None:
        return None
    if not isinstance(headers, Mapping):
        raise InvalidInput("push_headers must be an object of strings")
    if len(headers) > MAX_PUSH_HEADERS:
        raise InvalidInput(f"at most {MAX_PUSH_HEADERS} push headers per message")
    out: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidInput("push header names and values must be strings")
        if not name or len(name.encode()) > MAX_PUSH_HEADER_NAME_BYTES:
            raise InvalidInput(
                f"push header names must be 1-{MAX_PUSH_HEADER_NAME_BYTES} bytes"
            )
        if not value or len(value.encode()) > MAX_PUSH_HEADER_VALUE_BYTES:
            raise InvalidInput(
                f"push header values must be 1-{MAX_PUSH_HEADER_VALUE_BYTES} bytes"
            )
        if name.lower() in RESERVED_PUSH_HEADERS:
            raise InvalidInput(
                f"push header {name!r} is set by the pusher and cannot be given"
            )
        if any(ch in name for ch in ":\r\n") or any(ch in value for ch in "\r\n"):
            raise InvalidInput(
                "push headers may not contain line breaks (or ':' in names)"
            )
        out[name] = value
    return out or None


def validate_count(n: object, what: str = "messages") -> int:
    """A batch size: a whole number from 1 to 100."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PER_CALL:
        raise InvalidInput(f"n must be a whole number from 1 to {MAX_PER_CALL} {what}")
    return n


def validate_timeout(timeout: object) -> int | None:
    """A reservation timeout in seconds; None or 0 mean the queue's default.

    Small values are accepted (clients reserve for a few seconds in tests).
    """
    if timeout is None or (not isinstance(timeout, bool) and timeout == 0):
        return None
    return math.ceil(_number(timeout, "timeout", 1, MAX_TIMEOUT_SECONDS))


def validate_reserve(n: object, timeout: object, wait: object) -> ReserveRequest:
    """Check the arguments of a reserve call."""
    seconds = 0.0 if wait is None else _number(wait, "wait", 0, MAX_WAIT_SECONDS)
    return ReserveRequest(validate_count(n), validate_timeout(timeout), seconds)


def validate_new_messages(
    items: Sequence[NewMessage | str], max_bytes: int
) -> list[NewMessage]:
    """Check a post of 1 to 100 messages; returns them normalised."""
    if not 1 <= len(items) <= MAX_PER_CALL:
        raise InvalidInput(
            f"post 1 to {MAX_PER_CALL} messages at a time, got {len(items)}"
        )
    return [validate_new_message(m, max_bytes) for m in items]


def validate_new_message(message: NewMessage | str, max_bytes: int) -> NewMessage:
    """Check one message to post (anything else than a NewMessage is its body);
    returns it normalised."""
    if not isinstance(message, NewMessage):
        return NewMessage(validate_body(message, max_bytes))
    return NewMessage(
        body=validate_body(message.body, max_bytes),
        delay=validate_delay(message.delay),
        push_headers=validate_push_headers(message.push_headers),
    )


def encode_push_headers(headers: Mapping[str, str] | None) -> str | None:
    """Push headers as stored (JSON text) or None."""
    return None if not headers else json.dumps(dict(headers), separators=(",", ":"))


# -- reservations and dead letters ---------------------------------------------------


def resolve_timeout(requested: int | None, queue_default: int) -> int:
    """The reservation timeout to use: the request's, else the queue's."""
    return queue_default if requested is None else requested


def reservation_expires_at(now: float, timeout: float) -> float:
    """When a reservation taken (or touched) at `now` runs out."""
    return now + timeout


def reservation_holds(reserved_until: float | None, now: float) -> bool:
    """A reservation holds strictly before its expiry; at or after it, it is stale."""
    return reserved_until is not None and now < reserved_until


def should_dead_letter(reserved_count: int, max_reservations: int | None) -> bool:
    """Whether reserving a message again would exceed `max_reservations`.

    `reserved_count` is the count before this reservation. With a maximum of 1
    a message is delivered at most once; None means no dead-letter queue.
    """
    return max_reservations is not None and reserved_count >= max_reservations


def is_expired(expires_at: float, now: float) -> bool:
    """A message is gone once its expiration time is reached."""
    return now >= expires_at


# -- alerts --------------------------------------------------------------------------


def alert_crossed(
    kind: str, direction: str, trigger: int, before: int, after: int
) -> bool:
    """Whether a queue size moving from `before` to `after` crosses an alert.

    fixed: the size reaches `trigger` (asc, from below) or drops to it (desc,
    from above). progressive: the same for every multiple of `trigger`.
    """
    if trigger < 1:
        return False
    if kind == "fixed":
        if direction == "asc":
            return before < trigger <= after
        return before > trigger >= after
    if direction == "asc":
        return after // trigger > before // trigger
    # desc: some multiple k*trigger (k >= 1) with after <= k*trigger < before
    highest_below_before = (before - 1) // trigger
    lowest_at_or_above_after = max(1, -(-after // trigger))
    return before > after and highest_below_before >= lowest_at_or_above_after


def alert_fires(
    *,
    kind: str,
    direction: str,
    trigger: int,
    snooze: float,
    before: int,
    after: int,
    last_fired_at: float | None,
    now: float,
) -> bool:
    """Whether an alert fires now: it was crossed and it is not snoozed."""
    if not alert_crossed(kind, direction, trigger, before, after):
        return False
    return last_fired_at is None or now - last_fired_at >= snooze
