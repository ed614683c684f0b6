"""Message queues (IronMQ v3): every queue and message operation, over storage.

One copy of the logic for the SDK (`app.queues`), the CLI, the HTTP API and the
pusher. Errors: `NotFound` ("Queue not found", "Message not found"),
`InvalidInput`/`PayloadTooLarge` for bad arguments (nothing is written), and
`StaleLease` when a reservation id no longer holds (HTTP 403).

    queues = MessageQueues(storage, project_id="default")
    ids = queues.post("orders", ["a", "b"])
    for msg in queues.reserve("orders", n=10, wait=30):
        ...
        queues.delete("orders", msg.id, msg.reservation_id)
"""

from workhorse.queues.operations import MessageQueues
from workhorse.queues.refusal import MESSAGE_NOT_FOUND, QUEUE_NOT_FOUND
from workhorse.queues.upkeep import check_alerts, expire_messages

__all__ = [
    "MESSAGE_NOT_FOUND",
    "QUEUE_NOT_FOUND",
    "MessageQueues",
    "check_alerts",
    "expire_messages",
]
