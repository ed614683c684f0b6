"""Push delivery rules: per-subscriber status, retries, when a message is done,
the error-queue message, and which addresses a webhook may reach.

Pure functions; the pusher (`worker/pusher.py`) does the I/O.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlsplit

from workhorse.domain.queue import QueueType, Subscriber
from workhorse.errors import InvalidInput

DEFAULT_HEADERS = {
    "User-Agent": "IronMQ Pusherd",
    "Content-Type": "text/plain; encoding=utf-8",
}
# Of the headers the pusher sets, only these may be overridden (subscriber or
# message headers).
OVERRIDABLE = frozenset(h.lower() for h in DEFAULT_HEADERS)
ERROR_TEXT_LIMIT = 1000


class PushStatus(StrEnum):
    """A subscriber's delivery state for one message. The last two are final."""

    QUEUED = "queued"  # not tried yet
    RETRYING = "retrying"  # failed; tried again after retries_delay
    RESERVED = (
        "reserved"  # answered 202; waits for the subscriber to delete the message
    )
    DELETED = "deleted"  # delivered and acknowledged
    ERROR = "error"  # gave up after the last retry

    @property
    def is_final(self) -> bool:
        """True once nothing more will be sent to this subscriber."""
        return self in (PushStatus.DELETED, PushStatus.ERROR)


@dataclass(frozen=True, slots=True)
class SubscriberStatus:
    """Where delivery of one message to one subscriber stands."""

    name: str
    url: str
    position: int
    status: PushStatus
    retries_remaining: int
    tries: int = 0
    status_code: int | None = None
    last_try_at: float | None = None
    reservation_id: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Wire shape of `GET .../messages/{id}/subscribers` items."""
        return {
            "name": self.name,
            "url": self.url,
            "status": self.status.value,
            "status_code": self.status_code,
            "tries": self.tries,
            "retries_remaining": self.retries_remaining,
            "last_try_at": self.last_try_at,
            "msg": self.error,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery attempt got: an HTTP status, or None with an error."""

    status_code: int | None
    error: str | None = None


def initial_statuses(
    subscribers: Sequence[Subscriber], retries: int
) -> list[SubscriberStatus]:
    """Statuses for a message's first delivery round."""
    return [
        SubscriberStatus(s.name, s.url, i, PushStatus.QUEUED, retries)
        for i, s in enumerate(subscribers)
    ]


def due(statuses: Sequence[SubscriberStatus]) -> list[SubscriberStatus]:
    """Subscribers to try this round, in order: every one not final.

    A subscriber still `reserved` from an earlier round did not acknowledge its
    202 in time, so it is tried again.
    """
    return sorted(
        (s for s in statuses if not s.status.is_final), key=lambda s: s.position
    )


def after_attempt(
    status: SubscriberStatus, attempt: Attempt, *, now: float, reservation_id: str
) -> SubscriberStatus:
    """A subscriber's status after one try.

    2xx other than 202: delivered. 202: reserved until the subscriber deletes the
    message with `reservation_id`. Anything else: retried while retries remain,
    then an error.
    """
    code = attempt.status_code
    tried = replace(status, tries=status.tries + 1, last_try_at=now, status_code=code)
    if code is not None and 200 <= code < 300:
        if code == 202:
            return replace(
                tried,
                status=PushStatus.RESERVED,
                reservation_id=reservation_id,
                error=None,
            )
        return replace(tried, status=PushStatus.DELETED, error=None)
    error = (attempt.error or f"subscriber answered {code}")[:ERROR_TEXT_LIMIT]
    if status.retries_remaining > 0:
        return replace(
            tried,
            status=PushStatus.RETRYING,
            retries_remaining=status.retries_remaining - 1,
            error=error,
        )
    return replace(tried, status=PushStatus.ERROR, error=error)


def accepted(status: SubscriberStatus) -> bool:
    """Whether the last try was taken (delivered, or 202 awaiting acknowledgement)."""
    return status.status in (PushStatus.DELETED, PushStatus.RESERVED)


def is_done(kind: QueueType, statuses: Sequence[SubscriberStatus]) -> bool:
    """Whether a message needs no further delivery.

    multicast: every subscriber delivered or given up. unicast: one delivered,
    or every one given up.
    """
    if not statuses:
        return True
    if kind is QueueType.UNICAST:
        return any(s.status is PushStatus.DELETED for s in statuses) or all(
            s.status is PushStatus.ERROR for s in statuses
        )
    return all(s.status.is_final for s in statuses)


def failed(
    kind: QueueType, statuses: Sequence[SubscriberStatus]
) -> list[SubscriberStatus]:
    """Subscribers whose failure goes to the error queue once the message is done."""
    if kind is QueueType.UNICAST and any(
        s.status is PushStatus.DELETED for s in statuses
    ):
        return []
    return [s for s in statuses if s.status is PushStatus.ERROR]


def error_message_body(
    message_id: str,
    body: str,
    headers: Mapping[str, str] | None,
    failures: Sequence[SubscriberStatus],
) -> str:
    """The JSON posted to the error queue for a message that could not be delivered."""
    return json.dumps(
        {
            "source_msg_id": message_id,
            "body": body,
            "headers": dict(headers or {}),
            "subscribers": [
                {"name": s.name, "url": s.url, "code": s.status_code, "msg": s.error}
                for s in failures
            ],
        },
        separators=(",", ":"),
    )


def round_timeout(subscriber_count: int, request_timeout: float) -> int:
    """How long a delivery round may hold its reservation: every request timing
    out, plus slack."""
    return int(max(1, subscriber_count) * request_timeout) + 30


def request_headers(
    *,
    subscriber_headers: Mapping[str, str],
    push_headers: Mapping[str, str] | None,
    message_id: str,
    reservation_id: str,
    subscriber_name: str,
    message_url: str,
) -> dict[str, str]:
    """Headers of one push request; the `Iron-*` ones always win."""
    headers = dict(DEFAULT_HEADERS)
    for extra in (subscriber_headers, push_headers or {}):
        for name, value in extra.items():
            if name.lower().startswith("iron-"):
                continue
            if name.lower() in OVERRIDABLE:
                headers = {
                    k: v for k, v in headers.items() if k.lower() != name.lower()
                }
            headers[name] = value
    headers.update(
        {
            "Iron-Message-Id": message_id,
            "Iron-Reservation-Id": reservation_id,
            "Iron-Subscriber-Name": subscriber_name,
            "Iron-Subscriber-Message-Url": message_url,
        }
    )
    return headers


# -- internal targets ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InternalTarget:
    """An `ironmq://` queue or `ironworker://` code, in a project (None: the
    queue's own)."""

    kind: str
    project_id: str | None
    name: str


def parse_internal_url(url: str) -> InternalTarget:
    """`ironmq://[project:token@[host]]/Queue` or `ironworker://project:token@host/Code`."""
    parts = urlsplit(url)
    if parts.scheme not in ("ironmq", "ironworker"):
        raise InvalidInput(f"{url!r} is not an ironmq:// or ironworker:// url")
    name = unquote(parts.path.strip("/"))
    if not name:
        raise InvalidInput(f"{url!r} names no queue or code")
    project = unquote(parts.username) if parts.username else None
    return InternalTarget(parts.scheme, project or None, name)


# -- which addresses a webhook may reach ---------------------------------------------


@dataclass(frozen=True, slots=True)
class AllowList:
    """Addresses and host names exempt from the private-address block."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    hosts: frozenset[str] = frozenset()
    everything: bool = False


def parse_allow_list(entries: Sequence[str]) -> AllowList:
    """CIDRs (`10.0.0.0/8`), single addresses, host names, or `*` for everything."""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    hosts: set[str] = set()
    everything = False
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if entry == "*":
            everything = True
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower().rstrip("."))
    return AllowList(tuple(networks), frozenset(hosts), everything)


def address_blocked(address: str) -> bool:
    """Whether an address is off limits by default: anything not publicly routable
    (loopback, private, link-local including cloud metadata, CGNAT, multicast,
    reserved)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def host_allowed(host: str, addresses: Sequence[str], allow: AllowList) -> str | None:
    """None if a webhook to `host` (resolving to `addresses`) may be sent; else why."""
    if allow.everything or host.lower().rstrip(".") in allow.hosts:
        return None
    if not addresses:
        return f"{host} did not resolve"
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip in net for net in allow.networks):
            continue
        if address_blocked(address):
            return (
                f"{host} resolves to {address}, a private or local address; "
                "allow it with WORKHORSE_PUSH_ALLOW"
            )
    return None
