"""Queues (IronMQ v3): settings, what a valid create or update is, and the wire shape.

Settings arrive in IronMQ's own JSON shape (the `queue` object of PUT/PATCH), so
the HTTP layer passes them through unchanged:

    {"message_timeout": 60, "message_expiration": 604800, "type": "pull",
     "push": {"subscribers": [{"name", "url", "headers"}], "retries": 3,
              "retries_delay": 60, "error_queue": "errors"},
     "dead_letter": {"queue_name": "dlq", "max_reservations": 10},
     "alerts": [{"type": "fixed", "direction": "asc", "trigger": 100, "queue": "q",
                 "snooze": 0}]}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from workhorse.domain.message import validate_queue_name
from workhorse.errors import InvalidInput

DEFAULT_MESSAGE_TIMEOUT = 60
DEFAULT_MESSAGE_EXPIRATION = 604_800
MAX_MESSAGE_EXPIRATION = 2_592_000
MAX_MESSAGE_TIMEOUT = 86_400
DEFAULT_RETRIES = 3
MAX_RETRIES = 100
DEFAULT_RETRIES_DELAY = 60
MIN_RETRIES_DELAY = 3
MAX_RETRIES_DELAY = 86_400
DEFAULT_MAX_RESERVATIONS = 10
MAX_MAX_RESERVATIONS = 1000
MAX_ALERTS = 5
MAX_SUBSCRIBERS = 64
SUBSCRIBER_SCHEMES = ("http", "https", "ironmq", "ironworker")
ALERT_TYPES = ("fixed", "progressive")
ALERT_DIRECTIONS = ("asc", "desc")
DUPLICATE_ALERT = "At least one new alert duplicates current queue alerts."
PUSH_NO_ALERTS = "Push queues do not support alerts."


class QueueType(StrEnum):
    """Pull queues are reserved by consumers; push queues deliver to subscribers."""

    PULL = "pull"
    MULTICAST = "multicast"
    UNICAST = "unicast"


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A push target: `http(s)://`, `ironmq://` (a queue), `ironworker://` (a code)."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Wire shape."""
        return {"name": self.name, "url": self.url, "headers": dict(self.headers)}


@dataclass(frozen=True, slots=True)
class PushSettings:
    """Delivery settings of a push queue; `error_queue` None means none."""

    subscribers: tuple[Subscriber, ...]
    retries: int = DEFAULT_RETRIES
    retries_delay: int = DEFAULT_RETRIES_DELAY
    error_queue: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Wire shape."""
        return {
            "subscribers": [s.to_dict() for s in self.subscribers],
            "retries": self.retries,
            "retries_delay": self.retries_delay,
            "error_queue": self.error_queue or "",
        }


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Where messages go once reserved more than `max_reservations` times."""

    queue_name: str
    max_reservations: int = DEFAULT_MAX_RESERVATIONS

    def to_dict(self) -> dict[str, Any]:
        """Wire shape."""
        return {
            "queue_name": self.queue_name,
            "max_reservations": self.max_reservations,
        }


@dataclass(frozen=True, slots=True)
class Alert:
    """A queue-size alert that posts a message to `queue` when crossed.

    `last_size` and `last_fired_at` are evaluation state, not settings.
    """

    id: str
    type: str
    direction: str
    trigger: int
    queue: str
    snooze: int = 0
    last_size: int | None = None
    last_fired_at: float | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        """What makes two alerts duplicates."""
        return (self.type, self.direction, self.trigger)

    def to_dict(self) -> dict[str, Any]:
        """Wire shape (no evaluation state)."""
        return {
            "id": self.id,
            "type": self.type,
            "direction": self.direction,
            "trigger": self.trigger,
            "queue": self.queue,
            "snooze": self.snooze,
        }

    def to_state(self) -> dict[str, Any]:
        """Stored shape (with evaluation state)."""
        return {
            **self.to_dict(),
            "last_size": self.last_size,
            "last_fired_at": self.last_fired_at,
        }


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """Everything configurable on a queue."""

    type: QueueType = QueueType.PULL
    message_timeout: int = DEFAULT_MESSAGE_TIMEOUT
    message_expiration: int = DEFAULT_MESSAGE_EXPIRATION
    push: PushSettings | None = None
    dead_letter: DeadLetter | None = None
    alerts: tuple[Alert, ...] = ()

    @property
    def is_push(self) -> bool:
        """Whether messages are delivered to subscribers rather than reserved."""
        return self.type is not QueueType.PULL

    def to_dict(self) -> dict[str, Any]:
        """Wire shape of the settings part of a queue object."""
        out: dict[str, Any] = {
            "type": self.type.value,
            "message_timeout": self.message_timeout,
            "message_expiration": self.message_expiration,
        }
        if self.push is not None:
            out["push"] = self.push.to_dict()
        if self.dead_letter is not None:
            out["dead_letter"] = self.dead_letter.to_dict()
        if self.alerts:
            out["alerts"] = [a.to_dict() for a in self.alerts]
        return out


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue with its counts: `size` is every message not deleted or expired
    (reserved and delayed ones included); `total_messages` every message ever posted."""

    project_id: str
    name: str
    id: str
    settings: QueueSettings
    size: int | None = None
    total_messages: int = 0
    created_at: float | None = None
    updated_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The IronMQ `queue` object."""
        out: dict[str, Any] = {
            "project_id": self.project_id,
            "name": self.name,
            "id": self.id,
        }
        if self.size is not None:
            out["size"] = self.size
            out["total_messages"] = self.total_messages
        out.update(self.settings.to_dict())
        return out


# -- parsing -------------------------------------------------------------------------


def _whole(value: object, name: str, low: int, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value != int(value)
        or not low <= value <= high
    ):
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}")
    return int(value)


def _mapping(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{name} must be an object")
    return value


def parse_subscriber(data: object) -> Subscriber:
    """One subscriber: `url` is required; `name` defaults to the URL."""
    item = _mapping(data, "each subscriber")
    url = item.get("url")
    if not isinstance(url, str) or not url:
        raise InvalidInput("each subscriber needs a url")
    parts = urlsplit(url)
    if parts.scheme not in SUBSCRIBER_SCHEMES:
        raise InvalidInput(
            "subscriber url must start with one of "
            + ", ".join(s + "://" for s in SUBSCRIBER_SCHEMES)
        )
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise InvalidInput(f"subscriber url {url!r} has no host")
    if parts.scheme in ("ironmq", "ironworker") and not parts.path.strip("/"):
        raise InvalidInput(f"subscriber url {url!r} names no queue or code")
    name = item.get("name") or url
    if not isinstance(name, str) or len(name) > 255:
        raise InvalidInput("subscriber name must be a string of at most 255 characters")
    headers = item.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise InvalidInput("subscriber headers must be an object of strings")
    return Subscriber(name=name, url=url, headers=dict(headers))


def check_subscribers(subscribers: Sequence[Subscriber]) -> tuple[Subscriber, ...]:
    """At least one subscriber, names unique."""
    if not subscribers:
        raise InvalidInput("a push queue needs at least one subscriber")
    if len(subscribers) > MAX_SUBSCRIBERS:
        raise InvalidInput(f"at most {MAX_SUBSCRIBERS} subscribers per queue")
    names = [s.name for s in subscribers]
    if len(set(names)) != len(names):
        raise InvalidInput("subscriber names must be unique")
    return tuple(subscribers)


def _parse_push(data: object, current: PushSettings | None) -> PushSettings:
    push = _mapping(data, "push")
    base = current or PushSettings(subscribers=())
    subscribers = base.subscribers
    if "subscribers" in push:
        raw = push["subscribers"]
        if not isinstance(raw, list):
            raise InvalidInput("push.subscribers must be a list")
        subscribers = tuple(parse_subscriber(s) for s in raw)
    retries, delay, error_queue = base.retries, base.retries_delay, base.error_queue
    if push.get("retries") is not None:
        retries = _whole(push["retries"], "push.retries", 0, MAX_RETRIES)
    if push.get("retries_delay") is not None:
        delay = _whole(
            push["retries_delay"],
            "push.retries_delay",
            MIN_RETRIES_DELAY,
            MAX_RETRIES_DELAY,
        )
    if "error_queue" in push and push["error_queue"] is not None:
        if not isinstance(push["error_queue"], str):
            raise InvalidInput('push.error_queue must be a queue name, or "" for none')
        error_queue = (
            validate_queue_name(push["error_queue"]) if push["error_queue"] else None
        )
    return PushSettings(check_subscribers(subscribers), retries, delay, error_queue)


def _parse_dead_letter(data: object, current: DeadLetter | None) -> DeadLetter | None:
    dl = _mapping(data, "dead_letter")
    name = dl.get("queue_name", current.queue_name if current else "")
    if name == "" or name is None:
        return None
    maximum = dl.get("max_reservations")
    limit = (
        _whole(maximum, "dead_letter.max_reservations", 1, MAX_MAX_RESERVATIONS)
        if maximum is not None
        else (current.max_reservations if current else DEFAULT_MAX_RESERVATIONS)
    )
    return DeadLetter(validate_queue_name(name), limit)


def parse_alert(data: object, new_id: Callable[[], str]) -> Alert:
    """One alert definition; `id` is kept when given, else a new one is made."""
    item = _mapping(data, "each alert")
    kind = item.get("type", "fixed")
    direction = item.get("direction") or "asc"
    if kind not in ALERT_TYPES:
        raise InvalidInput("alert type must be fixed or progressive")
    if direction not in ALERT_DIRECTIONS:
        raise InvalidInput("alert direction must be asc or desc")
    if item.get("trigger") is None:
        raise InvalidInput("each alert needs a trigger (a queue size)")
    trigger = _whole(item["trigger"], "alert trigger", 1, 10**12)
    queue = item.get("queue")
    if not queue:
        raise InvalidInput("each alert needs a queue to post to")
    snooze = _whole(item.get("snooze") or 0, "alert snooze", 0, 10**9)
    alert_id = item.get("id")
    return Alert(
        id=alert_id if isinstance(alert_id, str) and alert_id else new_id(),
        type=str(kind),
        direction=str(direction),
        trigger=trigger,
        queue=validate_queue_name(queue),
        snooze=snooze,
    )


def merge_alerts(current: Sequence[Alert], new: Sequence[Alert]) -> tuple[Alert, ...]:
    """Add alerts, refusing duplicates (same type, direction and trigger)."""
    keys = [a.key for a in current]
    for alert in new:
        if alert.key in keys:
            raise InvalidInput(DUPLICATE_ALERT)
        keys.append(alert.key)
    merged = (*current, *new)
    if len(merged) > MAX_ALERTS:
        raise InvalidInput(f"at most {MAX_ALERTS} alerts per queue")
    return merged


def _parse_alert_list(data: object, new_id: Callable[[], str]) -> list[Alert]:
    if not isinstance(data, list):
        raise InvalidInput("alerts must be a list")
    return [parse_alert(a, new_id) for a in data]


def parse_settings(
    data: Mapping[str, Any] | None,
    *,
    current: QueueSettings | None,
    new_id: Callable[[], str],
    replace_alerts: bool = False,
) -> QueueSettings:
    """Validate a create (`current` None) or an update of a queue's settings.

    Fields left out keep their current value. Alerts given on an update are
    added to the current ones, or replace them when `replace_alerts`.

    Raises:
        InvalidInput: a value is out of range, the type would change, push
            settings lack subscribers, a pull queue gets subscribers, a push
            queue gets alerts or a dead-letter queue, or alerts are duplicated.
    """
    data = _mapping(data or {}, "queue")
    base = current or QueueSettings()
    kind = _parse_type(data, current)
    timeout, expiration = base.message_timeout, base.message_expiration
    if data.get("message_timeout"):
        timeout = _whole(
            data["message_timeout"], "message_timeout", 1, MAX_MESSAGE_TIMEOUT
        )
    if data.get("message_expiration"):
        expiration = _whole(
            data["message_expiration"], "message_expiration", 1, MAX_MESSAGE_EXPIRATION
        )
    push = base.push
    if data.get("push") is not None:
        if kind is QueueType.PULL:
            raise InvalidInput(
                "a pull queue cannot have subscribers; create a push queue instead"
            )
        push = _parse_push(data["push"], base.push)
    if kind is not QueueType.PULL and push is None:
        raise InvalidInput(
            "a push queue needs push settings with at least one subscriber"
        )
    dead_letter = base.dead_letter
    if data.get("dead_letter") is not None:
        if kind is not QueueType.PULL:
            raise InvalidInput("dead-letter queues are for pull queues only")
        dead_letter = _parse_dead_letter(data["dead_letter"], base.dead_letter)
    alerts = base.alerts
    if data.get("alerts") is not None:
        if kind is not QueueType.PULL:
            raise InvalidInput(PUSH_NO_ALERTS)
        given = _parse_alert_list(data["alerts"], new_id)
        alerts = merge_alerts(() if replace_alerts else base.alerts, given)
    return QueueSettings(kind, timeout, expiration, push, dead_letter, alerts)


def _parse_type(data: Mapping[str, Any], current: QueueSettings | None) -> QueueType:
    raw = data.get("type")
    if raw is None or raw == "":
        if current is not None:
            return current.type
        # A queue created with push settings and no type is a multicast queue.
        return QueueType.MULTICAST if data.get("push") is not None else QueueType.PULL
    try:
        kind = QueueType(raw)
    except ValueError:
        raise InvalidInput("queue type must be pull, multicast or unicast") from None
    if current is not None and kind is not current.type:
        raise InvalidInput("a queue's type cannot change once it exists")
    return kind


def check_queue_links(name: str, settings: QueueSettings) -> None:
    """A queue may not dead-letter, error-queue or alert into itself."""
    if settings.dead_letter is not None and settings.dead_letter.queue_name == name:
        raise InvalidInput("a queue cannot be its own dead-letter queue")
    if settings.push is not None and settings.push.error_queue == name:
        raise InvalidInput("a queue cannot be its own error queue")
    if any(a.queue == name for a in settings.alerts):
        raise InvalidInput("an alert cannot post to the queue it watches")


def with_alert_state(settings: QueueSettings, alerts: Sequence[Alert]) -> QueueSettings:
    """The same settings with updated alert evaluation state."""
    return replace(settings, alerts=tuple(alerts))


def remove_alerts(settings: QueueSettings, ids: Sequence[str]) -> QueueSettings:
    """Settings without the alerts whose ids are given (unknown ids are ignored)."""
    return replace(
        settings, alerts=tuple(a for a in settings.alerts if a.id not in set(ids))
    )


def add_subscribers(
    settings: QueueSettings, new: Sequence[Subscriber], *, replace_all: bool
) -> QueueSettings:
    """Add subscribers (same name: updated) or replace the whole list."""
    if settings.push is None:
        raise InvalidInput("only push queues have subscribers")
    if replace_all:
        subs = list(new)
    else:
        by_name = {s.name: s for s in settings.push.subscribers}
        for s in new:
            by_name[s.name] = s
        subs = list(by_name.values())
    return replace(
        settings, push=replace(settings.push, subscribers=check_subscribers(subs))
    )


def remove_subscribers(settings: QueueSettings, names: Sequence[str]) -> QueueSettings:
    """Drop subscribers by name; a push queue keeps at least one."""
    if settings.push is None:
        raise InvalidInput("only push queues have subscribers")
    subs = [s for s in settings.push.subscribers if s.name not in set(names)]
    return replace(
        settings, push=replace(settings.push, subscribers=check_subscribers(subs))
    )


# -- storage encoding ----------------------------------------------------------------


def push_from_json(data: Mapping[str, Any] | None) -> PushSettings | None:
    """Stored push settings back to the dataclass."""
    if not data:
        return None
    return PushSettings(
        subscribers=tuple(
            Subscriber(s["name"], s["url"], s.get("headers") or {})
            for s in data["subscribers"]
        ),
        retries=int(data["retries"]),
        retries_delay=int(data["retries_delay"]),
        error_queue=data.get("error_queue") or None,
    )


def dead_letter_from_json(data: Mapping[str, Any] | None) -> DeadLetter | None:
    """Stored dead-letter settings back to the dataclass."""
    if not data:
        return None
    return DeadLetter(data["queue_name"], int(data["max_reservations"]))


def alerts_from_json(data: Sequence[Mapping[str, Any]] | None) -> tuple[Alert, ...]:
    """Stored alerts (with state) back to dataclasses."""
    return tuple(
        Alert(
            id=a["id"],
            type=a["type"],
            direction=a["direction"],
            trigger=int(a["trigger"]),
            queue=a["queue"],
            snooze=int(a.get("snooze") or 0),
            last_size=a.get("last_size"),
            last_fired_at=a.get("last_fired_at"),
        )
        for a in data or ()
    )
