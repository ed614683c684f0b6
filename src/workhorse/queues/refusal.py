"""Why a change keyed by (queue, message id, reservation id) did not apply."""

from __future__ import annotations

from workhorse.errors import NotFound, StaleLease, WorkhorseError
from workhorse.storage.stores import Transaction

QUEUE_NOT_FOUND = "Queue not found"
MESSAGE_NOT_FOUND = "Message not found"


def refusal(
    tx: Transaction,
    project_id: str,
    name: str,
    message_id: str,
    *,
    reservation_id: str | None,
    now: float | None,
) -> WorkhorseError:
    """The error for a delete, touch or release that changed nothing.

    NotFound when the queue or message is missing (HTTP 404), StaleLease when the
    message is reserved under another reservation or its reservation ran out
    (HTTP 403).
    """
    row = tx.messages.get_row(project_id, name, message_id, now=now)
    if row is None:
        exists = tx.messages.get_queue(project_id, name) is not None
        return NotFound(MESSAGE_NOT_FOUND if exists else QUEUE_NOT_FOUND)
    if not reservation_id:
        return StaleLease("Message is reserved: give its reservation_id")
    if row["reservation_id"] == reservation_id:
        return StaleLease("Reservation timed out")
    return StaleLease("Reservation timed out or was replaced by a newer one")
